# edbx: the request of the control port's second protocol, its command-line proxy (server 3.19.4).
#
# A first message that is not a ControlHello with a token is read by the server as a CliRequest
# and runs `dbx` with its arguments, unauthenticated (docs/PROTOCOL.md, section 5). edbx never
# sends one to use it: `edbx audit` sends `--version` to learn whether the port would run it.
# Wire-compatible with the server's definition (one pointer field, a list of texts). Regenerate
# the Rust code after editing:
#   EDBX_REGEN=1 cargo test -p edbx-wire --test it generated_fresh

@0xe0a2076e0ef19fb9;

struct CliRequest {
  args @0 :List(Text);
}
