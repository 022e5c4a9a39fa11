//! Splitting a pipelined batch into lines, and answering it end to end
//! (framing, UTF-8 check, dispatch, the call into `libhello.so`, reply).

mod common;

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use host::framing::LineDecoder;
use host::session::Session;
use host::table_in_force::TableInForce;

fn framing(c: &mut Criterion) {
    let batch: Vec<u8> = "HELLO\r\nECHO some text here\n".repeat(32).into_bytes();
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Elements(64));
    group.bench_function("decode-64-lines", |b| {
        let mut decoder = LineDecoder::new(8192);
        let mut buf = BytesMut::with_capacity(batch.len());
        b.iter(|| {
            buf.extend_from_slice(black_box(&batch));
            let mut n = 0;
            while decoder.decode(&buf).is_some() {
                n += 1;
            }
            decoder.consume(&mut buf);
            n
        })
    });

    let (table, _runtime) = common::hello_library();
    let dispatch = TableInForce::new(table);
    let hellos: Vec<u8> = "HELLO\n".repeat(64).into_bytes();
    group.bench_function("answer-64-hellos", |b| {
        let mut session = Session::new(8192, common::client(), &dispatch);
        let mut buf = BytesMut::with_capacity(hellos.len());
        b.iter(|| {
            buf.extend_from_slice(black_box(&hellos));
            while let Some(frame) = session.decoder.decode(&buf) {
                let _ = session.respond(frame, &dispatch);
            }
            session.decoder.consume(&mut buf);
            let n = session.out.len();
            session.out.clear();
            n
        })
    });
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
