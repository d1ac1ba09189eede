use super::*;

const S: i64 = 1_000_000;
const T0: UnixMicros = 1_800_000_000 * S;

fn motion(cam: &str, on: bool, t: UnixMicros) -> Event {
    Event::new(
        MOTION_ALARM,
        vec![("Source", format!("VideoSource_{cam}"))],
        vec![("State", on.to_string())],
        t,
    )
}

fn talk(on: bool, t: UnixMicros) -> Event {
    Event::new(
        TALK,
        vec![("AudioOutputToken", "AudioOutput_cam1".into())],
        vec![("Active", on.to_string())],
        t,
    )
}

fn messages(o: PullOutcome) -> Vec<Event> {
    match o {
        PullOutcome::Messages { messages, .. } => messages,
        PullOutcome::Wait { .. } => panic!("expected messages, got a wait"),
    }
}

#[test]
fn initialized_then_changed_and_same_value_ignored() {
    let mut bus = EventBus::new(EventLimits::default());
    assert!(bus.publish(motion("cam1", false, T0)).is_empty());
    let info = bus.subscribe("a", "ada", vec![], None, T0).unwrap();
    assert_eq!(info.expires, T0 + 60 * S);
    let m = messages(bus.pull("a", "ada", 0, 10, false, T0).unwrap());
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].operation, PropertyOperation::Initialized);
    assert_eq!(
        bus.publish(motion("cam1", true, T0 + S)),
        vec!["a".to_owned()]
    );
    assert!(
        bus.publish(motion("cam1", true, T0 + 2 * S)).is_empty(),
        "same value"
    );
    let m = messages(bus.pull("a", "ada", 0, 10, false, T0 + 2 * S).unwrap());
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].operation, PropertyOperation::Changed);
    assert_eq!(m[0].data, vec![("State", "true".to_owned())]);
    assert_eq!(m[0].time, T0 + S);
}

#[test]
fn long_poll_waits_then_is_woken_by_a_publish() {
    let mut bus = EventBus::new(EventLimits::default());
    bus.subscribe("a", "ada", vec![], None, T0).unwrap();
    bus.subscribe("b", "bob", vec![TALK.to_owned()], None, T0)
        .unwrap();
    // Nothing queued: wait, capped at the longest wait.
    assert_eq!(
        bus.pull("a", "ada", 5 * S, 10, false, T0).unwrap(),
        PullOutcome::Wait {
            deadline: T0 + 5 * S
        }
    );
    assert_eq!(
        bus.pull("a", "ada", 3600 * S, 10, false, T0).unwrap(),
        PullOutcome::Wait {
            deadline: T0 + 60 * S
        }
    );
    // A publish names the subscriptions to wake: only those whose filter selects it.
    assert_eq!(
        bus.publish(motion("cam1", true, T0 + S)),
        vec!["a".to_owned()]
    );
    assert!(bus.has_messages("a"));
    assert!(!bus.has_messages("b"));
    let mut woken = bus.publish(talk(true, T0 + S));
    woken.sort();
    assert_eq!(woken, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        messages(bus.pull("a", "ada", 5 * S, 10, false, T0 + S).unwrap()).len(),
        2
    );
    // After the wait, the answer is empty rather than another wait.
    assert_eq!(
        messages(bus.pull("a", "ada", 5 * S, 10, true, T0 + 6 * S).unwrap()),
        vec![]
    );
}

#[test]
fn subscriptions_expire_unless_renewed_or_pulled() {
    let mut bus = EventBus::new(EventLimits::default());
    bus.subscribe("a", "ada", vec![], Some(T0 + 10 * S), T0)
        .unwrap();
    bus.subscribe("b", "ada", vec![], Some(T0 + 10 * S), T0)
        .unwrap();
    bus.subscribe("c", "ada", vec![], Some(T0 + 10 * S), T0)
        .unwrap();
    assert_eq!(
        bus.renew("b", "ada", Some(T0 + 100 * S), T0 + 5 * S),
        Ok(T0 + 100 * S)
    );
    // A pull extends to the default life from the pull.
    bus.pull("c", "ada", 0, 1, false, T0 + 5 * S).unwrap();
    assert_eq!(bus.expire(T0 + 10 * S), vec!["a".to_owned()]);
    assert_eq!(
        bus.pull("a", "ada", 0, 1, false, T0 + 10 * S),
        Err(EventError::Unknown("a".into()))
    );
    assert!(bus.expire(T0 + 64 * S).is_empty());
    assert_eq!(bus.expire(T0 + 65 * S), vec!["c".to_owned()]);
    assert_eq!(bus.len(), 1);
    assert_eq!(bus.counters().expired, 2);
    // The longest life bounds a renewal; a time in the past is refused.
    assert_eq!(
        bus.renew("b", "ada", Some(T0 + 1_000_000 * S), T0),
        Ok(T0 + 3600 * S)
    );
    assert_eq!(
        bus.renew("b", "ada", Some(T0 - S), T0),
        Err(EventError::InThePast)
    );
}

#[test]
fn limits_per_user_and_in_all() {
    let limits = EventLimits {
        per_user: 2,
        total: 3,
        ..Default::default()
    };
    let mut bus = EventBus::new(limits);
    bus.subscribe("1", "ada", vec![], None, T0).unwrap();
    bus.subscribe("2", "ada", vec![], None, T0).unwrap();
    assert!(matches!(
        bus.subscribe("3", "ada", vec![], None, T0),
        Err(EventError::TooManyForUser { limit: 2, .. })
    ));
    bus.subscribe("3", "bob", vec![], None, T0).unwrap();
    assert_eq!(
        bus.subscribe("4", "cy", vec![], None, T0),
        Err(EventError::TooMany(3))
    );
    assert_eq!(bus.counters().refused, 2);
    // Unsubscribing (only by the owner) frees a place.
    assert_eq!(
        bus.unsubscribe("1", "bob", T0),
        Err(EventError::NotOwner("1".into()))
    );
    bus.unsubscribe("1", "ada", T0).unwrap();
    bus.subscribe("4", "cy", vec![], None, T0).unwrap();
    assert_eq!(
        bus.unsubscribe("1", "ada", T0),
        Err(EventError::Unknown("1".into()))
    );
    // Expired subscriptions free their places too.
    assert!(bus.subscribe("5", "dan", vec![], None, T0 + 61 * S).is_ok());
}

#[test]
fn full_queue_drops_the_oldest_and_counts() {
    let limits = EventLimits {
        queue: 3,
        ..Default::default()
    };
    let mut bus = EventBus::new(limits);
    bus.subscribe("a", "ada", vec![], None, T0).unwrap();
    for i in 0..10 {
        bus.publish(motion("cam1", i % 2 == 0, T0 + i * S));
    }
    assert_eq!(bus.dropped("a"), Some(7));
    assert_eq!(bus.counters().dropped, 7);
    let m = messages(bus.pull("a", "ada", 0, 100, false, T0 + 10 * S).unwrap());
    let times: Vec<i64> = m.iter().map(|e| (e.time - T0) / S).collect();
    assert_eq!(times, vec![7, 8, 9]);
    // MessageLimit takes fewer.
    bus.publish(motion("cam1", false, T0 + 11 * S));
    bus.publish(motion("cam1", true, T0 + 12 * S));
    assert_eq!(
        messages(bus.pull("a", "ada", 0, 1, false, T0 + 12 * S).unwrap()).len(),
        1
    );
}

#[test]
fn synchronization_point_resends_current_state() {
    let mut bus = EventBus::new(EventLimits::default());
    bus.publish(motion("cam1", false, T0));
    bus.publish(motion("cam2", false, T0));
    bus.publish(talk(false, T0));
    bus.subscribe(
        "a",
        "ada",
        parse_topic_filter("tns1:VideoSource//."),
        None,
        T0,
    )
    .unwrap();
    assert_eq!(
        messages(bus.pull("a", "ada", 0, 100, false, T0).unwrap()).len(),
        2
    );
    bus.publish(motion("cam1", true, T0 + S));
    bus.synchronize("a", "ada", T0 + 2 * S).unwrap();
    let m = messages(bus.pull("a", "ada", 0, 100, false, T0 + 2 * S).unwrap());
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(m[0].operation, PropertyOperation::Changed);
    assert!(m[1..]
        .iter()
        .all(|e| e.operation == PropertyOperation::Initialized));
    assert_eq!(
        bus.property(MOTION_ALARM, &[("Source", "VideoSource_cam1")])
            .map(|e| e.data.clone()),
        Some(vec![("State", "true".to_owned())])
    );
}

#[test]
fn topic_filters() {
    assert!(topic_matches("tns1:VideoSource/MotionAlarm", MOTION_ALARM));
    assert!(topic_matches("tns1:VideoSource//.", MOTION_ALARM));
    assert!(topic_matches("x:RuleEngine//.", CELL_MOTION));
    assert!(!topic_matches("tns1:VideoSource", MOTION_ALARM));
    assert!(!topic_matches("tns1:Device//.", MOTION_ALARM));
    assert_eq!(
        parse_topic_filter(" tns1:A/B | tns1:C "),
        vec!["tns1:A/B".to_owned(), "tns1:C".to_owned()]
    );
}

#[test]
fn durations_and_termination_times() {
    assert_eq!(parse_duration("PT10S"), Some(10 * S));
    assert_eq!(parse_duration("PT1M30S"), Some(90 * S));
    assert_eq!(parse_duration("PT0.5S"), Some(S / 2));
    assert_eq!(parse_duration("P1DT1H"), Some(25 * 3600 * S));
    for bad in ["", "P", "PT", "10S", "PT10", "PTXS", "P1Y", "PT1e400S"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
    assert_eq!(parse_termination("PT60S", T0), Some(T0 + 60 * S));
    assert_eq!(
        parse_termination("2027-01-15T08:00:00Z", T0),
        ipcamd_proto::time::parse_utc("2027-01-15T08:00:00Z")
    );
    assert_eq!(parse_termination("soon", T0), None);
}
