//! Sending one delivery: HTTPS through rustls, no redirects, no proxies, and names resolved by
//! the registry itself so that the addresses it checked are the ones it connects to (a name
//! that resolves to a public address when checked and to 127.0.0.1 when connecting — DNS
//! rebinding — cannot slip through: the connection uses the checked answer).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::rules::{self, Allowlist, Attempt, UrlRefusal};
use crate::config::ServeArgs;

/// How long one attempt may take in all; a bank's slow receiver holds only its own deliveries.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator's delivery settings, shared by the routes and the worker.
#[derive(Debug, Clone)]
pub struct Policy {
    pub allow: Allowlist,
    pub max_attempts: i32,
    /// Test-only name answers; when set, nothing but loopback is ever connected to.
    pub test_resolve: Option<Arc<HashMap<String, IpAddr>>>,
    /// Extra trusted CA certificates (PEM).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl Policy {
    pub fn from_args(args: &ServeArgs) -> Result<Policy, String> {
        let test_resolve = if args.webhook_test_resolve.is_empty() {
            None
        } else {
            let mut map = HashMap::new();
            for entry in &args.webhook_test_resolve {
                let (name, ip) = entry
                    .split_once('=')
                    .and_then(|(n, ip)| Some((n.trim().to_ascii_lowercase(), ip.parse().ok()?)))
                    .ok_or_else(|| format!("--webhook-test-resolve {entry}: not NAME=IP"))?;
                map.insert(name, ip);
            }
            Some(Arc::new(map))
        };
        let extra_roots = match &args.webhook_ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--webhook-ca-file {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("--webhook-ca-file {}: {e}", path.display()))?
            }
        };
        Ok(Policy {
            extra_roots,
            allow: Allowlist::parse(&args.webhook_allow_http)?,
            max_attempts: args.webhook_max_attempts.max(1),
            test_resolve,
        })
    }
}

/// Resolves names for deliveries, refusing answers that include an address deliveries never
/// reach (`strict`, for endpoints not allowlisted). The answer it returns is what the connection
/// uses.
struct GuardedResolver {
    strict: bool,
    test_resolve: Option<Arc<HashMap<String, IpAddr>>>,
}

#[derive(Debug)]
struct AddressNotAllowed;

impl std::fmt::Display for AddressNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name resolves to an address webhook deliveries never reach")
    }
}

impl std::error::Error for AddressNotAllowed {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let strict = self.strict;
        let test_resolve = self.test_resolve.clone();
        Box::pin(async move {
            let ips: Vec<IpAddr> = match &test_resolve {
                Some(map) => map.get(&host).copied().into_iter().collect(),
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .map(|a| a.ip())
                    .collect(),
            };
            vet(&ips, strict, test_resolve.is_some())?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// One refused address refuses the name: a receiver on a public address has no reason to
/// publish an internal one beside it.
fn vet(
    ips: &[IpAddr],
    strict: bool,
    test_mode: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if ips.is_empty() {
        return Err("the name has no address".into());
    }
    if strict && ips.iter().any(|ip| rules::refused_address(*ip).is_some()) {
        return Err(Box::new(AddressNotAllowed));
    }
    // Under test answers nothing leaves this machine, whatever the checks above say.
    if test_mode && ips.iter().any(|ip| !ip.is_loopback()) {
        return Err(Box::new(AddressNotAllowed));
    }
    Ok(())
}

/// The two clients: one for endpoints the operator allowlisted (any address, plain HTTP
/// allowed), one for everything else (public addresses only).
pub struct Sender {
    policy: Policy,
    public: reqwest::Client,
    allowlisted: reqwest::Client,
}

impl Sender {
    pub fn new(policy: Policy) -> Result<Sender, reqwest::Error> {
        let client = |strict: bool| {
            let mut builder = reqwest::Client::builder();
            for cert in &policy.extra_roots {
                builder = builder.add_root_certificate(cert.clone());
            }
            builder
                .https_only(strict)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(ATTEMPT_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .dns_resolver(GuardedResolver {
                    strict,
                    test_resolve: policy.test_resolve.clone(),
                })
                .build()
        };
        Ok(Sender {
            public: client(true)?,
            allowlisted: client(false)?,
            policy,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// POSTs one signed delivery and says what happened. The cause of a failure goes to the log
    /// for operators, never to the bank.
    pub async fn send(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
        delivery: i64,
    ) -> Attempt {
        let dest = match rules::destination(url, &self.policy.allow) {
            Ok(d) => d,
            Err(UrlRefusal::Address(_)) => return Attempt::AddressNotAllowed,
            Err(refusal) => {
                tracing::info!(delivery, reason = %refusal.message(), "webhook destination refused");
                return Attempt::AddressNotAllowed;
            }
        };
        if let Some(map) = &self.policy.test_resolve {
            // A literal address is connected to without a look-up: hold it to the test rule too.
            let host = dest.host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = host.parse::<IpAddr>() {
                if !ip.is_loopback() {
                    return Attempt::AddressNotAllowed;
                }
            } else if !map.contains_key(&host.to_ascii_lowercase()) {
                return Attempt::Unreachable;
            }
        }
        let client = if dest.allowlisted {
            &self.allowlisted
        } else {
            &self.public
        };
        let mut request = client.post(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.body(body).send().await {
            Ok(r) => Attempt::Answered(r.status().as_u16()),
            Err(e) => {
                let refused = chain_has_refusal(&e);
                tracing::info!(delivery, error = %e, refused, "webhook attempt failed");
                if refused {
                    Attempt::AddressNotAllowed
                } else {
                    Attempt::Unreachable
                }
            }
        }
    }
}

fn chain_has_refusal(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<AddressNotAllowed>() {
            return true;
        }
        match e.source() {
            Some(s) => e = s,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_answers_with_an_internal_address_are_refused() {
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        let meta: IpAddr = "169.254.169.254".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(vet(&[public], true, false).is_ok());
        assert!(vet(&[public, meta], true, false).is_err());
        assert!(vet(&[lo], true, false).is_err());
        assert!(vet(&[lo], false, false).is_ok());
        assert!(vet(&[], false, false).is_err());
        // Test answers never lead off the machine, even allowlisted.
        assert!(vet(&[meta], false, true).is_err());
        assert!(vet(&[lo], false, true).is_ok());
    }
}
