//! Command-line values both binaries share: comma-separated lists and the etcd access flags.

/// Splits a comma-separated list, trimming blanks and dropping empty items.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Declares the clap flags for etcd access with the environment variables of one binary, so
/// `etcd-dns` reads `ETCD_DNS_ETCD` and `register` reads `REGISTER_ETCD`.
#[macro_export]
macro_rules! etcd_args {
    ($name:ident, $env:literal) => {
        /// etcd access flags.
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// etcd endpoints, comma separated (http:// or https://)
            #[arg(long, env = concat!($env, "ETCD"), default_value = $crate::etcd::DEFAULT_ETCD, global = true)]
            pub etcd: String,
            /// etcd user name (with --etcd-password)
            #[arg(long, env = concat!($env, "ETCD_USER"), global = true)]
            pub etcd_user: Option<String>,
            /// etcd password (with --etcd-user)
            #[arg(long, env = concat!($env, "ETCD_PASSWORD"), hide_env_values = true, global = true)]
            pub etcd_password: Option<String>,
            /// CA certificate (PEM) to verify the etcd servers
            #[arg(long, env = concat!($env, "ETCD_CA"), global = true)]
            pub etcd_ca: Option<std::path::PathBuf>,
            /// client certificate (PEM) for mutual TLS (with --etcd-key)
            #[arg(long, env = concat!($env, "ETCD_CERT"), global = true)]
            pub etcd_cert: Option<std::path::PathBuf>,
            /// client key (PEM) for mutual TLS (with --etcd-cert)
            #[arg(long, env = concat!($env, "ETCD_KEY"), global = true)]
            pub etcd_key: Option<std::path::PathBuf>,
        }

        impl From<$name> for $crate::etcd::EtcdConfig {
            fn from(args: $name) -> Self {
                Self {
                    endpoints: $crate::flags::split_list(&args.etcd),
                    user: args.etcd_user,
                    password: args.etcd_password,
                    ca: args.etcd_ca,
                    cert: args.etcd_cert,
                    key: args.etcd_key,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split() {
        assert_eq!(
            split_list(" http://a:1, ,http://b:2 "),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
    }
}
