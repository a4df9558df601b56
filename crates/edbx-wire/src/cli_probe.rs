//! The request of the control port's second protocol: its command-line proxy, which runs `dbx`
//! with the request's arguments for anyone who connects (docs/PROTOCOL.md, section 5). A client
//! never uses it; `edbx audit` sends `--version` to learn whether a port would.

use capnp::message::Builder;

use crate::generated::cli_capnp::cli_request;

/// A `CliRequest { args }` as a bare (unframed) Cap'n Proto stream message, the first message of
/// a connection as the server's command-line proxy reads it.
///
/// ```
/// let probe = edbx_wire::cli_request(&["--version"]);
/// // One whole message, as the server's stream reader measures it.
/// assert_eq!(edbx_wire::stream_message_len(&probe, 1 << 20).unwrap(), Some(probe.len()));
/// ```
pub fn cli_request(args: &[&str]) -> Vec<u8> {
    let mut message = Builder::new_default();
    let root = message.init_root::<cli_request::Builder<'_>>();
    let len = u32::try_from(args.len()).expect("fewer than 2^32 arguments");
    let mut list = root.init_args(len);
    for (i, arg) in (0..len).zip(args) {
        list.set(i, *arg);
    }
    crate::codec::write_message(&message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_back_as_its_arguments() {
        let bytes = cli_request(&["--version"]);
        assert_eq!(
            crate::stream_message_len(&bytes, 1 << 20).unwrap(),
            Some(bytes.len())
        );
        let message =
            capnp::serialize::read_message(&mut bytes.as_slice(), crate::reader_options()).unwrap();
        let root = message.get_root::<cli_request::Reader<'_>>().unwrap();
        let args: Vec<&str> = root
            .get_args()
            .unwrap()
            .iter()
            .map(|a| a.unwrap().to_str().unwrap())
            .collect();
        assert_eq!(args, ["--version"]);
        // The layout the server's proxy reads: a root struct of one pointer, a one-pointer
        // list, "--version\0" in two words; no data section, no capabilities.
        let any: capnp::any_pointer::Reader<'_> = message.get_root().unwrap();
        let size = any.target_size().unwrap();
        assert_eq!((size.word_count, size.cap_count), (4, 0));
    }
}
