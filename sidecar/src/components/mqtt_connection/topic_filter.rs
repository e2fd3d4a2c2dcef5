//! MQTT 3.1.1 topic names and topic filters (section 4.7): a subscription may name a filter
//! with `+` (exactly one level) and `#` (any number of levels, last), and each message is
//! handed to the subscription whose filter its concrete topic matches.

/// Refuses what cannot be an MQTT topic name to publish to.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(format!(
            "MQTT topic {topic:?}: must be a non-empty topic name without wildcards (+, #)"
        ));
    }
    Ok(())
}

/// Refuses what cannot be an MQTT topic filter to subscribe to: `+` must fill a whole level,
/// `#` a whole level and the last one.
pub fn check_filter(filter: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("MQTT topic filter {filter:?}: {why}"));
    if filter.is_empty() || filter.contains('\0') {
        return invalid("must be non-empty, without NUL");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return invalid("'#' must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return invalid("'+' must be a whole level");
        }
    }
    Ok(())
}

/// Whether `topic` (a concrete topic name) matches `filter`. A filter starting with a wildcard
/// does not match topics starting with `$` (the broker's own, such as `$SYS/...`).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            // Also matches the parent level itself: "a/#" matches "a".
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if topic_levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

/// The subscription a message on `topic` goes to: the exact one if there is one, else the
/// first matching filter in sort order, so overlapping filters choose the same way every time.
pub fn subscription_for<'a>(
    filters: impl IntoIterator<Item = &'a String>,
    topic: &str,
) -> Option<&'a String> {
    let mut best: Option<&'a String> = None;
    for filter in filters {
        if filter == topic {
            return Some(filter);
        }
        if filter_matches(filter, topic) && best.is_none_or(|b| filter < b) {
            best = Some(filter);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_the_mqtt_spec_says() {
        let cases: &[(&str, &str, bool)] = &[
            ("sensors/+/temp", "sensors/kitchen/temp", true),
            ("sensors/+/temp", "sensors/kitchen/hall/temp", false),
            ("sensors/+/temp", "sensors/temp", false),
            ("sensors/+", "sensors/", true),
            ("sensors/#", "sensors", true),
            ("sensors/#", "sensors/a/b/c", true),
            ("sensors/#", "other/a", false),
            ("#", "anything/at/all", true),
            ("+/+", "a/b", true),
            ("+/+", "a", false),
            ("+", "/a", false),
            ("/+", "/a", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("#", "$SYS/broker/uptime", false),
            ("+/broker/uptime", "$SYS/broker/uptime", false),
            ("$SYS/#", "$SYS/broker/uptime", true),
        ];
        for (filter, topic, want) in cases {
            assert_eq!(filter_matches(filter, topic), *want, "{filter} ~ {topic}");
        }
    }

    #[test]
    fn only_valid_filters_are_taken() {
        for ok in ["a", "a/b", "+", "#", "a/+/c", "a/#", "+/+/#", "/a", "a//b"] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b#", "a+/b", "a/+b", "##", "a\0b"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
        assert!(check_topic("a/b").is_ok());
        for bad in ["", "a/+", "a/#"] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_goes_to_the_exact_subscription_else_the_first_matching_filter() {
        let filters: Vec<String> = ["s/#", "s/+/t", "s/a/t", "other"].map(str::to_owned).into();
        let pick = |topic| subscription_for(&filters, topic).map(String::as_str);
        assert_eq!(pick("s/a/t"), Some("s/a/t"));
        assert_eq!(pick("s/b/t"), Some("s/#"));
        assert_eq!(pick("s/b/u"), Some("s/#"));
        assert_eq!(pick("x"), None);
    }
}
