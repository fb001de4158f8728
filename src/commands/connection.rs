//! The connection to the Speakap API a command plans or applies against.

use crate::config::Config;
use crate::error::Error;
use crate::speakap::{Client, token_from_env};

/// The API connection; for `url: embedded` also the in-process simulator behind it.
pub struct Connection {
    pub client: Client,
    #[cfg(feature = "simulator")]
    embedded: Option<super::embedded::Embedded>,
    /// A simulated network (embedded, or `speakap-sim` on this machine): rehearsals over
    /// simulated days may apply as of any date.
    pub simulated: bool,
}

/// Whether `url` is a `speakap-sim` on a loopback address: only there is a network simulated.
/// Asked without the token; a real API never listens on loopback.
async fn is_local_simulator(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return false;
    }
    let identity = format!("{}/_sim/identity", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    match client {
        Ok(client) => client
            .get(identity)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}

impl Connection {
    pub async fn open(config: &Config) -> Result<Connection, Error> {
        let settings = &config.sync.speakap;
        #[cfg(feature = "simulator")]
        if let Some(embedded) = settings
            .embedded
            .as_ref()
            .filter(|_| settings.url == "embedded")
        {
            let embedded = super::embedded::start(config, embedded).await?;
            // `requests_per_second` protects a real API; the in-process simulator needs no such care.
            let client = config
                .sync
                .client(&embedded.url, &embedded.token)?
                .unthrottled();
            return Ok(Connection {
                client,
                embedded: Some(embedded),
                simulated: true,
            });
        }
        let token = token_from_env(&settings.token_env)?;
        Ok(Connection {
            client: config.sync.client(&settings.url, &token)?,
            #[cfg(feature = "simulator")]
            embedded: None,
            simulated: is_local_simulator(&settings.url).await,
        })
    }

    pub async fn close(self) -> Result<(), Error> {
        #[cfg(feature = "simulator")]
        if let Some(embedded) = self.embedded {
            embedded.stop().await?;
        }
        Ok(())
    }
}
