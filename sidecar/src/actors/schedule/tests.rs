use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn go_durations() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("0", Some(Duration::ZERO)),
        ("1s", Some(S(1))),
        ("0h0m3s0ms", Some(S(3))),
        ("1h30m", Some(S(5400))),
        ("1.5s", Some(Duration::from_millis(1500))),
        ("300ms", Some(Duration::from_millis(300))),
        ("2us", Some(Duration::from_micros(2))),
        ("10µs", Some(Duration::from_micros(10))),
        ("7ns", Some(Duration::from_nanos(7))),
        ("+5m", Some(S(300))),
        ("-1s", None),
        ("", None),
        ("5", None),
        ("s", None),
        ("5x", None),
        ("1h 2m", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_go_duration(text), *want, "{text:?}");
    }
}

#[test]
fn iso_durations() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("PT2H30M", Some(S(9000))),
        ("PT1M30S", Some(S(90))),
        ("P1D", Some(S(86400))),
        ("P1W", Some(S(7 * 86400))),
        ("P1Y", Some(S(365 * 86400))),
        ("P1M", Some(S(30 * 86400))),
        ("P1DT1S", Some(S(86401))),
        ("PT0.5S", Some(Duration::from_millis(500))),
        ("P", None),
        ("PT", None),
        ("P1S", None),
        ("PT1D", None),
        ("PT1S1M", None),
        ("1S", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_iso_duration(text), *want, "{text:?}");
    }
}

#[test]
fn periods() {
    assert_eq!(parse_period(""), Ok(None));
    assert_eq!(
        parse_period("R5/PT1M30S"),
        Ok(Some(Period {
            every: S(90),
            repetitions: Some(5)
        }))
    );
    assert_eq!(
        parse_period("1s"),
        Ok(Some(Period {
            every: S(1),
            repetitions: None
        }))
    );
    assert_eq!(
        parse_period("R2/1s"),
        Ok(Some(Period {
            every: S(1),
            repetitions: Some(2)
        }))
    );
    assert_eq!(parse_period("0s"), Ok(None));
    for bad in ["R0/PT1S", "R/PT1S", "Rx/PT1S", "R5", "soon", "-1s"] {
        assert!(parse_period(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn schedules_anchor_at_registration() {
    let now = SystemTime::UNIX_EPOCH + S(1_000_000);
    let s = parse_schedule("", "", "", now).expect("test value");
    assert_eq!((s.first, s.period, s.expires), (now, None, None));

    let s = parse_schedule("2s", "1s", "10s", now).expect("test value");
    assert_eq!(s.first, now + S(2));
    // A duration TTL counts from the first due time, as in daprd.
    assert_eq!(s.expires, Some(now + S(12)));

    let s = parse_schedule("PT3S", "", "", now).expect("test value");
    assert_eq!(s.first, now + S(3));

    let s = parse_schedule("1970-01-12T13:46:41Z", "", "1970-01-12T13:46:50Z", now)
        .expect("test value");
    assert_eq!(s.first, SystemTime::UNIX_EPOCH + S(1_000_001));
    assert_eq!(s.expires, Some(SystemTime::UNIX_EPOCH + S(1_000_010)));

    for (due, period, ttl) in [
        ("later", "", ""),
        ("", "often", ""),
        ("", "", "forever"),
        // An absolute TTL before the first firing.
        ("10s", "1s", "1970-01-01T00:00:01Z"),
    ] {
        assert!(
            parse_schedule(due, period, ttl, now).is_err(),
            "{due:?} {period:?} {ttl:?}"
        );
    }
}

#[test]
fn next_firing_honours_repetitions_and_ttl() {
    let now = SystemTime::UNIX_EPOCH + S(100);
    let once = parse_schedule("1s", "", "", now).expect("test value");
    assert_eq!(once.next(now + S(1), 1), None);

    let twice = parse_schedule("0s", "R2/1s", "", now).expect("test value");
    assert_eq!(twice.next(now, 1), Some(now + S(1)));
    assert_eq!(twice.next(now + S(1), 2), None);

    let bounded = parse_schedule("0s", "1s", "2500ms", now).expect("test value");
    assert_eq!(bounded.next(now + S(1), 2), Some(now + S(2)));
    assert_eq!(bounded.next(now + S(2), 3), None);

    // daprd counts a duration TTL from the first due time: due 2s, every 2s, TTL 3s fires at
    // 2s and 4s (the JS SDK's timer TTL test relies on it).
    let from_due = parse_schedule("2s", "2s", "3s", now).expect("test value");
    assert_eq!(from_due.expires, Some(now + S(5)));
    assert_eq!(from_due.next(now + S(2), 1), Some(now + S(4)));
    assert_eq!(from_due.next(now + S(4), 2), None);
    let due_later = parse_schedule("10s", "1s", "5s", now).expect("a TTL after the due time");
    assert_eq!(due_later.expires, Some(now + S(15)));

    let forever = parse_schedule("0s", "1s", "", now).expect("test value");
    assert_eq!(forever.next(now + S(1000), 1000), Some(now + S(1001)));
}
