//! Query strings: Dapr's `metadata.<k>=<v>` parameters, and single parameters.

use std::collections::BTreeMap;

/// `metadata.<k>=<v>` query parameters as component metadata.
pub fn query_metadata(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        if let Some(name) = decode(k).strip_prefix("metadata.") {
            out.insert(name.to_owned(), decode(v));
        }
    }
    out
}

/// One query parameter.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query.unwrap_or_default().split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_metadata_is_decoded() {
        let md = query_metadata(Some("metadata.ttlInSeconds=30&x=1&metadata.a%20b=c%2Fd"));
        assert_eq!(md.get("ttlInSeconds").map(String::as_str), Some("30"));
        assert_eq!(md.get("a b").map(String::as_str), Some("c/d"));
        assert_eq!(md.len(), 2);
        assert_eq!(
            query_param(Some("consistency=strong&y"), "consistency").as_deref(),
            Some("strong")
        );
    }
}
