//! AWS Signature Version 4, as the SDKs and the AWS CLI sign requests: the canonical request,
//! the string to sign, and the signing key derived from the secret by HMAC-SHA256 over date,
//! region, service and `aws4_request`. Only the `Authorization` header form is accepted.

use aws_lc_rs::{digest, hmac};
use axum::http::HeaderMap;

/// How far a request's `X-Amz-Date` may be from the server's clock, as AWS allows.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a signature was refused, with AWS's exception name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigError {
    pub code: &'static str,
    pub message: String,
}

fn incomplete(message: impl Into<String>) -> SigError {
    SigError {
        code: "IncompleteSignatureException",
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> SigError {
    SigError {
        code: "InvalidSignatureException",
        message: message.into(),
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(value: &str) -> Result<Authorization, SigError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Authorization header: only AWS4-HMAC-SHA256 is supported"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential =
        credential.ok_or_else(|| incomplete("Authorization header: Credential is missing"))?;
    let signed =
        signed.ok_or_else(|| incomplete("Authorization header: SignedHeaders is missing"))?;
    let signature =
        signature.ok_or_else(|| incomplete("Authorization header: Signature is missing"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(incomplete(format!(
            "Credential \"{credential}\": expected KEY/DATE/REGION/SERVICE/aws4_request"
        )));
    };
    Ok(Authorization {
        access_key: (*key).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// A request as it arrived, for checking its signature.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, data).as_ref().to_vec()
}

/// RFC 3986 encoding of everything but the unreserved characters (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The canonical request of SigV4, step 1 of the algorithm.
pub fn canonical_request(req: &Signed<'_>, signed_headers: &[String]) -> Result<String, SigError> {
    let mut headers = String::new();
    for name in signed_headers {
        let v = header_value(req.headers, name)
            .ok_or_else(|| invalid(format!("signed header \"{name}\" is not in the request")))?;
        headers.push_str(&format!("{name}:{v}\n"));
    }
    let payload = match req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        Some(claimed) => {
            let actual = sha256_hex(req.body);
            if !claimed.eq_ignore_ascii_case(&actual) {
                return Err(invalid(
                    "x-amz-content-sha256 does not match the request body",
                ));
            }
            actual
        }
        None => sha256_hex(req.body),
    };
    let path = if req.path.is_empty() { "/" } else { req.path };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.query),
        headers,
        signed_headers.join(";"),
        payload
    ))
}

/// The key SigV4 signs with, derived from the secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The signature a request must carry, given its parsed `Authorization` and the secret.
pub fn signature(
    req: &Signed<'_>,
    auth: &Authorization,
    amz_date: &str,
    secret: &str,
) -> Result<String, SigError> {
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    Ok(hex(&hmac_sha256(&key, to_sign.as_bytes())))
}

/// Checks a request's SigV4 signature with `secret` (looked up by the caller from
/// `auth.access_key`) at the server's time `now` (epoch seconds).
pub fn verify(
    req: &Signed<'_>,
    auth: &Authorization,
    secret: &str,
    now: i64,
) -> Result<(), SigError> {
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(invalid("SignedHeaders must include host"));
    }
    let amz_date = match header_value(req.headers, "x-amz-date") {
        Some(d) => d,
        None => return Err(incomplete("header X-Amz-Date is missing")),
    };
    let at = crate::time::parse_amz_date(&amz_date)
        .ok_or_else(|| incomplete(format!("X-Amz-Date \"{amz_date}\" is not YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(invalid(format!(
            "Credential date {} does not match X-Amz-Date {amz_date}",
            auth.date
        )));
    }
    if (now - at).abs() > MAX_SKEW_SECS {
        return Err(invalid(format!(
            "Signature expired: {amz_date} is more than 15 minutes from the server's time {}",
            crate::time::amz_date(now)
        )));
    }
    let expected = signature(req, auth, &amz_date, secret)?;
    let matches = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if matches {
        Ok(())
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's published SigV4 test suite, case "get-vanilla".
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .unwrap();
        let req = Signed {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            canonical_request(&req, &auth.signed_headers).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let now = crate::time::parse_amz_date("20150830T123600Z").unwrap();
        verify(&req, &auth, secret, now).unwrap();
        let e = verify(&req, &auth, "wrong", now).unwrap_err();
        assert_eq!(e.code, "InvalidSignatureException");
        let e = verify(&req, &auth, secret, now + 16 * 60).unwrap_err();
        assert!(e.message.contains("Signature expired"), "{e:?}");
    }

    /// AWS's test suite, case "get-vanilla-query-order-key-case": parameters sorted.
    #[test]
    fn aws_test_suite_query_order() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        )
        .unwrap();
        let req = Signed {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let now = crate::time::parse_amz_date("20150830T123600Z").unwrap();
        verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now).unwrap();
    }

    #[test]
    fn malformed_headers_are_named() {
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=x")
                .unwrap_err()
                .message
                .contains("Credential")
        );
        assert_eq!(
            parse_authorization("Basic abc").unwrap_err().code,
            "IncompleteSignatureException"
        );
    }
}
