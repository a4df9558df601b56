use std::time::Duration;

/// Schema enforcement mode passed to `dbx start --restrict <mode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restrict {
    /// No schema enforcement (`--restrict off`); the default for test servers.
    #[default]
    Off,
    /// Enforce schemas for aggregates that have one (`--restrict default`).
    Default,
    /// Every aggregate needs a schema (`--restrict strict`).
    Strict,
}

impl Restrict {
    /// The value given to `--restrict`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Restrict::Off => "off",
            Restrict::Default => "default",
            Restrict::Strict => "strict",
        }
    }
}

/// How to configure a [`TestServer`](crate::TestServer).
///
/// Builder-style; [`Default`] gives a server that requires Noise, echoes JSON on writes
/// (`verbose_responses = true`), is single-tenant and runs with `--restrict off`.
///
/// ```
/// use edbx_testkit::ServerOptions;
/// let opts = ServerOptions::default()
///     .no_noise(true)
///     .verbose_responses(false)
///     .list_page_size(5);
/// assert!(opts.no_noise);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// `no_noise = true`: the server lets clients that ask for it skip the Noise handshake.
    pub no_noise: bool,
    /// `verbose_responses`: echo JSON on append/patch/create/archive (server default `true`).
    pub verbose_responses: bool,
    /// `[tenants] multi_tenant`: the hello must then carry a tenant id.
    pub multi_tenant: bool,
    /// `list_page_size` (server default 10).
    pub list_page_size: Option<usize>,
    /// `page_limit` (server default 1000).
    pub page_limit: Option<usize>,
    /// `dbx start --restrict` mode.
    pub restrict: Restrict,
    /// How long [`TestServer::start`](crate::TestServer::start) waits for the ports to accept
    /// connections (default 20 s).
    pub ready_timeout: Duration,
    /// Extra arguments appended to the `dbx --config CFG config ...` call that sets the server up
    /// (for example `["--snapshot-threshold", "5"]`).
    pub extra_config_args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            no_noise: false,
            verbose_responses: true,
            multi_tenant: false,
            list_page_size: None,
            page_limit: None,
            restrict: Restrict::Off,
            ready_timeout: Duration::from_secs(20),
            extra_config_args: Vec::new(),
        }
    }
}

impl ServerOptions {
    /// Allows plaintext sessions (`dbx config --no-noise`).
    pub fn no_noise(mut self, yes: bool) -> Self {
        self.no_noise = yes;
        self
    }

    /// Sets `verbose_responses`.
    pub fn verbose_responses(mut self, yes: bool) -> Self {
        self.verbose_responses = yes;
        self
    }

    /// Sets `[tenants] multi_tenant`.
    pub fn multi_tenant(mut self, yes: bool) -> Self {
        self.multi_tenant = yes;
        self
    }

    /// Sets `list_page_size`.
    pub fn list_page_size(mut self, n: usize) -> Self {
        self.list_page_size = Some(n);
        self
    }

    /// Sets `page_limit`.
    pub fn page_limit(mut self, n: usize) -> Self {
        self.page_limit = Some(n);
        self
    }

    /// Sets the `--restrict` mode.
    pub fn restrict(mut self, mode: Restrict) -> Self {
        self.restrict = mode;
        self
    }

    /// Sets how long to wait for the server to accept connections.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Appends one argument to the `dbx config` call.
    pub fn config_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_config_args.push(arg.into());
        self
    }
}

/// What to put into a token minted with [`TestServer::mint_token`](crate::TestServer::mint_token)
/// (`dbx token generate`).
///
/// `dbx` insists on at least one action and one tenant, so an empty list means: actions
/// `["*.*"]`, tenants `["default"]`. Resources default to `["*"]` (done by `dbx`). The TTL
/// defaults to 0, i.e. the token never expires.
///
/// ```
/// use edbx_testkit::TokenSpec;
/// let spec = TokenSpec::new("test", "reader")
///     .action("aggregate.read")
///     .resource("order")
///     .tenant("default")
///     .ttl_secs(600);
/// assert_eq!(spec.actions, ["aggregate.read"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenSpec {
    /// `--group`.
    pub group: String,
    /// `--user`.
    pub user: String,
    /// `--action` (repeated); empty means `*.*`.
    pub actions: Vec<String>,
    /// `--tenant` (repeated); empty means `default`.
    pub tenants: Vec<String>,
    /// `--resource` (repeated); empty leaves the `dbx` default `*`.
    pub resources: Vec<String>,
    /// `--ttl` in seconds; 0 = never expires.
    pub ttl_secs: u64,
    /// `--subject` (default `group:user`).
    pub subject: Option<String>,
}

impl TokenSpec {
    /// A token for `group`/`user` with all actions on all resources of tenant `default`.
    pub fn new(group: impl Into<String>, user: impl Into<String>) -> Self {
        TokenSpec {
            group: group.into(),
            user: user.into(),
            actions: Vec::new(),
            tenants: Vec::new(),
            resources: Vec::new(),
            ttl_secs: 0,
            subject: None,
        }
    }

    /// Adds an action such as `aggregate.read`, `aggregate.*` or `*.*`.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.actions.push(action.into());
        self
    }

    /// Adds a tenant the token is bound to.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenants.push(tenant.into());
        self
    }

    /// Adds a resource pattern.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Sets the lifetime in seconds (0 = never expires).
    pub fn ttl_secs(mut self, ttl: u64) -> Self {
        self.ttl_secs = ttl;
        self
    }

    /// Sets the subject (`sub` claim).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "token".into(),
            "generate".into(),
            "--group".into(),
            self.group.clone(),
            "--user".into(),
            self.user.clone(),
        ];
        let default_action = ["*.*".to_owned()];
        let actions = if self.actions.is_empty() {
            &default_action[..]
        } else {
            &self.actions[..]
        };
        for action in actions {
            args.push("--action".into());
            args.push(action.clone());
        }
        let default_tenant = ["default".to_owned()];
        let tenants = if self.tenants.is_empty() {
            &default_tenant[..]
        } else {
            &self.tenants[..]
        };
        for tenant in tenants {
            args.push("--tenant".into());
            args.push(tenant.clone());
        }
        for resource in &self.resources {
            args.push("--resource".into());
            args.push(resource.clone());
        }
        if let Some(subject) = &self.subject {
            args.push("--subject".into());
            args.push(subject.clone());
        }
        args.push("--ttl".into());
        args.push(self.ttl_secs.to_string());
        args.push("--json".into());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_spec_defaults_fill_mandatory_flags() {
        let args = TokenSpec::new("g", "u").to_args();
        assert_eq!(
            args,
            [
                "token", "generate", "--group", "g", "--user", "u", "--action", "*.*", "--tenant",
                "default", "--ttl", "0", "--json"
            ]
        );
    }

    #[test]
    fn token_spec_explicit_values() {
        let args = TokenSpec::new("g", "u")
            .action("a.read")
            .action("b.write")
            .tenant("t1")
            .resource("r")
            .subject("s")
            .ttl_secs(60)
            .to_args();
        let joined = args.join(" ");
        assert_eq!(
            joined,
            "token generate --group g --user u --action a.read --action b.write --tenant t1 \
             --resource r --subject s --ttl 60 --json"
        );
    }
}
