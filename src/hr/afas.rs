//! AFAS Profit GetConnector: `GET {url}/connectors/{connector}?skip=N&take=M` with
//! `Authorization: AfasToken base64(<token><version>1</version><data>TOKEN</data></token>)`,
//! answered with `{"skip": N, "take": M, "rows": [{field: value, …}]}`. Pages are read until an
//! empty one, never just to a short one: a connector may cap its pages below `take`, and stopping
//! at its first page would plan from part of the record (the rest would look like leavers). Each
//! `skip` advances by the rows actually received; `source.max_pages` stops a connector that never
//! ends. Connector fields are matched to `source.columns` like CSV headers.

use std::time::Duration;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Layout, Locator, Record, Records, Snapshot, format_date, match_columns, normalize};
use crate::config::{AfasSource, ColumnType};
use crate::error::Error;
use crate::redact::redact_credentials;

/// The `Authorization` header value for an AFAS app connector token.
pub fn authorization(token: &str) -> String {
    let xml = format!("<token><version>1</version><data>{token}</data></token>");
    format!(
        "AfasToken {}",
        base64::engine::general_purpose::STANDARD.encode(xml)
    )
}

/// Reads every row of the connector.
pub async fn read(
    source: &AfasSource,
    layout: Layout,
    date_format: &str,
) -> Result<Snapshot, Error> {
    let connector = Connector::new(source)?;
    let endpoint = &connector.endpoint;
    let take = u64::from(source.page_size.max(1));
    let max_pages = u64::from(source.max_pages.max(1));

    let mut hasher = Sha256::new();
    let mut rows = Rows {
        endpoint,
        layout: &layout,
        date_format,
        take,
        fields: None,
        records: Records::default(),
    };
    let mut skip: u64 = 0;
    let mut page: u64 = 1;
    loop {
        if page > max_pages {
            return Err(Error::input(format!(
                "AFAS connector {endpoint}: {max_pages} pages read ({skip} rows) without reaching the empty page that ends the record; stopped at `source.max_pages` ({max_pages}). If the record really is that large, raise `source.max_pages`; otherwise the connector does not page (it may ignore `skip`)"
            )));
        }
        let answer = connector.get(page, skip, take).await?;
        let page_rows = connector.rows(page, &answer)?;
        hasher.update(&answer.body);
        if page_rows.len() as u64 > take {
            return Err(Error::input(format!(
                "AFAS connector {endpoint}: page {page} has {} rows where {take} were asked for; the connector ignores paging",
                page_rows.len()
            )));
        }
        if page_rows.is_empty() {
            break;
        }
        rows.take_page(page, &page_rows)?;
        skip += page_rows.len() as u64;
        page += 1;
    }
    let records = rows.records;
    if records.is_empty() {
        return Err(Error::input(format!(
            "AFAS connector {endpoint} returned no rows; refusing to plan from it (it would look like everyone left)"
        )));
    }
    Ok(Snapshot {
        source: connector.endpoint,
        sha256: crate::digest::hex(&hasher.finalize()),
        locator: Locator::Connector { page_size: take },
        pages: Some(page),
        modified: None,
        layout,
        records,
    })
}

/// The connector's address and an HTTPS client that sends its token.
struct Connector<'s> {
    source: &'s AfasSource,
    endpoint: String,
    token: String,
    auth: HeaderValue,
    client: reqwest::Client,
}

impl<'s> Connector<'s> {
    fn new(source: &'s AfasSource) -> Result<Connector<'s>, Error> {
        let token = std::env::var(&source.token_env).map_err(|_| {
            Error::input(format!(
                "the environment variable {} (the AFAS token, named by `source.token_env`) is not set",
                source.token_env
            ))
        })?;
        let mut auth = HeaderValue::from_str(&authorization(token.trim())).map_err(|_| {
            Error::input(format!(
                "the AFAS token in ${} is not valid text",
                source.token_env
            ))
        })?;
        auth.set_sensitive(true);
        let endpoint = format!(
            "{}/connectors/{}",
            source.url.trim_end_matches('/'),
            source.connector
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| Error::input(format!("cannot set up HTTPS: {e}")))?;
        Ok(Connector {
            source,
            endpoint,
            token,
            auth,
            client,
        })
    }

    /// Page `page` (`take` rows from row `skip` on), answered with success.
    async fn get(&self, page: u64, skip: u64, take: u64) -> Result<Page, Error> {
        let endpoint = &self.endpoint;
        let url = format!("{endpoint}?skip={skip}&take={take}");
        let response = self
            .client
            .get(&url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                Error::input(format!(
                    "AFAS connector {endpoint}: no answer ({}); check `source.url`",
                    without_url(&e)
                ))
            })?;
        let status = response.status();
        let html = (response.headers().get(reqwest::header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("html"));
        let body: Vec<u8> = response
            .bytes()
            .await
            .map_err(|e| {
                Error::input(format!(
                    "AFAS connector {endpoint}: the answer to page {page} broke off ({})",
                    without_url(&e)
                ))
            })?
            .into();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Error::input(format!(
                "AFAS connector {endpoint}: the token in ${} was refused ({status}); check the token and that it may use connector \"{}\"",
                self.source.token_env, self.source.connector
            )));
        }
        if !status.is_success() {
            return Err(Error::input(format!(
                "AFAS connector {endpoint}: page {page} answered {status}: {}",
                snippet(&body, &self.token)
            )));
        }
        Ok(Page { body, html })
    }

    /// The rows of page `page`.
    fn rows(&self, page: u64, answer: &Page) -> Result<Vec<Value>, Error> {
        let endpoint = &self.endpoint;
        let body = &answer.body;
        let mut parsed: Value = serde_json::from_slice(body).map_err(|_| {
            let what = if answer.html || body.trim_ascii_start().starts_with(b"<") {
                "an HTML page instead of JSON (a login or error page? check `source.url`: it ends in /ProfitRestServices)".to_string()
            } else {
                format!("something that is not JSON ({})", snippet(body, &self.token))
            };
            Error::input(format!("AFAS connector {endpoint}: page {page} is {what}"))
        })?;
        match parsed.get_mut("rows").and_then(Value::as_array_mut) {
            Some(rows) => Ok(std::mem::take(rows)),
            None => Err(Error::input(format!(
                "AFAS connector {endpoint}: page {page} has no \"rows\" list; is `source.connector` a GetConnector?"
            ))),
        }
    }
}

/// A page as the connector answered it.
struct Page {
    body: Vec<u8>,
    /// Said to be HTML by its content type.
    html: bool,
}

/// Connector rows to records: the first row's field names are matched to the layout.
struct Rows<'a> {
    endpoint: &'a str,
    layout: &'a Layout,
    date_format: &'a str,
    take: u64,
    /// The first row's field names and, per layout slot, the one it is read from.
    fields: Option<(Vec<String>, Vec<usize>)>,
    records: Records,
}

impl Rows<'_> {
    /// Takes the rows of page `page` as records.
    fn take_page(&mut self, page: u64, rows: &[Value]) -> Result<(), Error> {
        let endpoint = self.endpoint;
        for (index, row) in rows.iter().enumerate() {
            // Page-aligned positions (a page never holds more than `take`), so that
            // `Locator::Connector` names the page and row even when pages are served shorter.
            let position = (page - 1) * self.take + index as u64 + 1;
            let Some(row) = row.as_object() else {
                return Err(Error::input(format!(
                    "AFAS connector {endpoint}: page {page} row {} is not an object",
                    index + 1
                )));
            };
            if self.fields.is_none() {
                let names: Vec<String> = row.keys().cloned().collect();
                let indexes = match_columns(
                    &format!("AFAS connector {endpoint}"),
                    self.layout,
                    &names,
                    " (field names of the GetConnector)",
                )?;
                self.fields = Some((names, indexes));
            }
            let (names, indexes) = self.fields.as_ref().expect("set above");
            let values: Vec<String> = indexes
                .iter()
                .enumerate()
                .map(|(slot, &i)| {
                    value_text(
                        field(row, &names[i]),
                        self.layout.kinds[slot],
                        self.date_format,
                    )
                })
                .collect();
            self.records
                .push(Record::new(position, values.iter().map(String::as_str)));
        }
        Ok(())
    }
}

/// A row's field by its exact name, or ignoring case and spaces.
fn field<'a>(row: &'a Map<String, Value>, name: &str) -> &'a Value {
    row.get(name)
        .or_else(|| {
            let wanted = normalize(name);
            row.iter()
                .find(|(k, _)| normalize(k) == wanted)
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

fn value_text(value: &Value, kind: ColumnType, date_format: &str) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => {
            let s = s.trim();
            // AFAS writes dates as 2026-03-01T00:00:00Z.
            if kind == ColumnType::Date
                && s.len() > 10
                && s.as_bytes()[10] == b'T'
                && let Ok(date) = s[..10].parse::<jiff::civil::Date>()
            {
                return format_date(date, date_format);
            }
            s.to_string()
        }
        other => other.to_string(),
    }
}

/// A short, single-line excerpt of a body for an error message, credentials redacted first (a
/// proxy may echo the request's headers).
fn snippet(body: &[u8], token: &str) -> String {
    let text = redact_credentials(&String::from_utf8_lossy(body), &[token]);
    let text: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", text.trim())
}

/// reqwest's error text without the URL (already in the message).
fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last.unwrap_or_else(|| {
        if error.is_timeout() {
            "timed out".to_string()
        } else {
            "request failed".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_header_follows_the_afas_format() {
        let header = authorization("ABC123");
        let encoded = header.strip_prefix("AfasToken ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "<token><version>1</version><data>ABC123</data></token>"
        );
    }

    #[test]
    fn values_become_text() {
        let t = |v: Value, k| value_text(&v, k, "%d-%m-%Y");
        assert_eq!(t(serde_json::json!(102), ColumnType::Auto), "102");
        assert_eq!(t(serde_json::json!(102.0), ColumnType::Auto), "102");
        assert_eq!(t(serde_json::json!(null), ColumnType::Auto), "");
        assert_eq!(t(serde_json::json!(" 0612 "), ColumnType::Auto), "0612");
        assert_eq!(
            t(serde_json::json!("2026-03-01T00:00:00Z"), ColumnType::Date),
            "01-03-2026"
        );
    }
}
