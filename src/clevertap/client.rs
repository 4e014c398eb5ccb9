//! The HTTP client for one CleverTap account: region → URLs (`/1/upload`,
//! `/1/delete/profiles.json`), auth headers, timeout.

use std::time::Duration;

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};

use super::classify::Reply;
use crate::config::{AccountSettings, REGIONS};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    delete_url: String,
    account_id: String,
    passcode: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("clevertap.accounts.{0}: account_id and passcode must be set")]
    MissingCredentials(String),
    #[error("clevertap.accounts.{0}: unknown region {1}")]
    UnknownRegion(String, String),
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

impl Client {
    pub fn new(
        name: &str,
        account: &AccountSettings,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let (Some(account_id), Some(passcode)) =
            (account.account_id.clone(), account.passcode.clone())
        else {
            return Err(ClientError::MissingCredentials(name.to_owned()));
        };
        let base = match &account.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = REGIONS
                    .iter()
                    .find(|(region, _)| *region == account.region)
                    .map(|(_, host)| *host)
                    .ok_or_else(|| {
                        ClientError::UnknownRegion(name.to_owned(), account.region.clone())
                    })?;
                format!("https://{host}")
            }
        };
        if base.starts_with("http://") && !is_loopback(&base) {
            tracing::warn!(
                account = name,
                "base_url is plain http to a non-loopback host; CleverTap itself is https only"
            );
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            url: format!("{base}/1/upload"),
            delete_url: format!("{base}/1/delete/profiles.json"),
            account_id,
            passcode,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one `{"d":[…]}` body and reports what came back; never fails otherwise.
    pub async fn upload(&self, body: Bytes) -> Reply {
        self.post(&self.url, body).await
    }

    /// Sends one `{"identity":[…]}` (or `{"guid":[…]}`) profile deletion; never fails otherwise.
    pub async fn delete(&self, body: Bytes) -> Reply {
        self.post(&self.delete_url, body).await
    }

    /// `body` is shared, not copied: the caller may keep it (to split a refused request).
    async fn post(&self, url: &str, body: Bytes) -> Reply {
        let sent = self
            .http
            .post(url)
            .header("X-CleverTap-Account-Id", &self.account_id)
            .header("X-CleverTap-Passcode", self.passcode.expose_secret())
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return transport_error(&error),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match response.bytes().await {
            Ok(body) => Reply::Http {
                status,
                retry_after,
                body: body.to_vec(),
            },
            Err(error) => transport_error(&error),
        }
    }
}

fn transport_error(error: &reqwest::Error) -> Reply {
    if error.is_timeout() {
        Reply::Timeout
    } else if error.is_connect() {
        Reply::Connect(error.to_string())
    } else {
        Reply::Other(error.to_string())
    }
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}
