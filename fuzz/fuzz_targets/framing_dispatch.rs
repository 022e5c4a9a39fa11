//! Arbitrary bytes through a connection's protocol logic: framing, UTF-8
//! and control-character checks, dispatch to real plugin hooks through the
//! ABI glue, and reply formatting.
//!
//! The first input byte picks how the rest is cut into reads, so that line
//! endings and over-long lines fall across read boundaries too. Invariants:
//! nothing panics, the input buffer never holds more than one line's worth
//! of bytes, and every request gets exactly one reply line (two for
//! testkit's `TWO`), however its hook fails.

#![no_main]

use std::sync::{Arc, LazyLock};

use abi_stable::std_types::RStr;
use bytes::BytesMut;
use host::dispatch::Dispatcher;
use host::plugins::LoadedPlugin;
use host::session::{Action, Session};
use host::table_in_force::TableInForce;
use libfuzzer_sys::fuzz_target;
use plugin_api::abi::HostInfo;

const MAX_LINE: usize = 64;

static DISPATCH: LazyLock<TableInForce> = LazyLock::new(|| {
    let info = HostInfo {
        server_name: RStr::from_str("fuzz"),
        host_version: RStr::from_str("0"),
        host: host::host_services::HostServices::detached().to_box(),
    };
    let object = plugin_api::instantiate::<testkit::Testkit>("greeting = \"hi\"\n", &info)
        .expect("testkit starts");
    let plugin = LoadedPlugin::new("testkit".into(), "0".into(), "in-process".into(), object)
        .expect("testkit's patterns compile");
    TableInForce::new(Dispatcher::new(vec![plugin]).expect("dispatch table"))
});

fn answer(session: &mut Session, frame: host::framing::Frame) -> bool {
    let mut expected = match &frame {
        host::framing::Frame::Line(line) if line == b"TWO" => 2,
        _ => 1,
    };
    let before = session.out.len();
    let action = match session.respond(frame, &DISPATCH) {
        // A hook runs on a blocking thread until it has earned its place
        // inline, which no hook does here, and testkit's blocking hook
        // sleeps for as long as the input says: one line stands in for
        // the call rather than stall the fuzzer.
        Action::Blocking { .. } => {
            session.out.push_str("MSG blocking hook skipped\n");
            expected = 1;
            Action::Continue
        }
        // Answered by the connection, from what all connections share.
        Action::Info | Action::Help { .. } => {
            session.out.push_str("INFO end\n");
            Action::Continue
        }
        other => other,
    };
    let reply = &session.out.as_str()[before..];
    assert!(reply.ends_with('\n'), "reply cut short: {reply:?}");
    assert_eq!(reply.matches('\n').count(), expected, "reply {reply:?}");
    assert!(!reply.contains('\r'), "reply {reply:?}");
    session.out.clear();
    matches!(action, Action::Close)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut % 97) + 1;
    let client = host::session::ClientInfo {
        id: 1,
        peer: Arc::from("fuzz"),
        tls_subject: None,
    };
    let mut session = Session::new(MAX_LINE, client, &DISPATCH);
    let mut input = BytesMut::new();
    for piece in data.chunks(chunk) {
        input.extend_from_slice(piece);
        while let Some(frame) = session.decoder.decode(&input) {
            if answer(&mut session, frame) {
                return;
            }
        }
        session.decoder.consume(&mut input);
        assert!(input.len() <= MAX_LINE + 1, "{} bytes held", input.len());
    }
    if let Some(frame) = session.decoder.finish(&input) {
        answer(&mut session, frame);
    }
});
