//! Micro-benchmarks of the protocol crate's hot paths, in bytes per second: what a client pays
//! per request besides the network.
//!
//! ```text
//! cargo bench -p edbx-wire --bench wire
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edbx_wire::{
    AppendEvent, GetAggregateReply, NoiseSession, Request, Response, decode_response,
    encode_request, encode_response,
};

/// A token the size of a real one (an EdDSA JWT is a few hundred bytes).
fn token() -> String {
    format!(
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.{}.{}",
        "a".repeat(260),
        "s".repeat(86)
    )
}

/// An aggregate as the server renders it: ~500 bytes of JSON.
fn aggregate_json() -> String {
    let json = concat!(
        r#"{"aggregate_type":"orders","aggregate_id":"ord_000123","version":3,"#,
        r#""state":{"status":"paid","customer":"cust-004551","total":"42.15","currency":"EUR","#,
        r#""items":"[{\"sku\":\"sku-0001\",\"qty\":2,\"price\":10.5},{\"sku\":\"sku-0042\",\"qty\":1,\"price\":21.15}]","#,
        r#""shipping":"{\"city\":\"Lisbon\",\"zip\":\"1100-148\",\"express\":false}"},"#,
        r#""merkle_root":"9f2c4d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d","#,
        r#""created_at":"2026-11-26T14:20:28.123456Z","updated_at":"2026-11-26T14:21:02.654321Z"}"#
    );
    json.to_owned()
}

fn append_request() -> Request {
    let mut event = AppendEvent::new(
        "orders",
        "ord_000123",
        "order.paid",
        r#"{"status":"paid","amount":42.15,"method":"card","seq":17}"#,
    );
    event.note = Some("paid at the till".to_owned());
    event.metadata_json = Some(r#"{"@trace":{"id":"t-1"}}"#.to_owned());
    Request::AppendEvent(event)
}

/// A finished handshake: (client, server).
fn noise_pair() -> (NoiseSession, NoiseSession) {
    let token = token();
    let mut client = NoiseSession::client_side(&token).expect("initiator");
    let mut server = NoiseSession::server_side(&token).expect("responder");
    let first = client.write_message(&[]).expect("message 1");
    server.read_message(&first).expect("read 1");
    let second = server.write_message(&[]).expect("message 2");
    client.read_message(&second).expect("read 2");
    assert!(client.is_handshake_finished() && server.is_handshake_finished());
    (client, server)
}

fn codec(c: &mut Criterion) {
    let token = token();
    let request = append_request();
    let encoded = encode_request(7, &token, &request).expect("encode");
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function(
        format!("encode appendEvent request ({} B)", encoded.len()),
        |b| b.iter(|| encode_request(black_box(7), black_box(&token), black_box(&request))),
    );

    // The server sends the aggregate twice: as aggregateJson and as resolvedJson.
    let aggregate = aggregate_json();
    let reply = encode_response(
        7,
        &Response::GetAggregate({
            let mut reply = GetAggregateReply::new(true, aggregate.clone());
            reply.resolved_json = Some(aggregate.clone());
            reply
        }),
    )
    .expect("encode reply");
    group.throughput(Throughput::Bytes(reply.len() as u64));
    group.bench_function(
        format!(
            "decode getAggregate response ({} B, {} B aggregate)",
            reply.len(),
            aggregate.len()
        ),
        |b| b.iter(|| decode_response(black_box(&reply)).expect("decode")),
    );
    group.finish();
}

fn noise(c: &mut Criterion) {
    let message = vec![0x5au8; 1024];
    let mut group = c.benchmark_group("noise");
    group.throughput(Throughput::Bytes(message.len() as u64));

    let (mut client, _server) = noise_pair();
    group.bench_function("encrypt+frame 1 KiB", |b| {
        b.iter(|| client.encrypt_frame(black_box(&message)).expect("encrypt"))
    });

    // Ciphertexts must be decrypted in the order they were made: the setup encrypts the next
    // one, the routine decrypts it (criterion runs a batch's setups, then its routines, in order).
    let (mut client, mut server) = noise_pair();
    group.bench_function("decrypt 1 KiB", |b| {
        b.iter_batched(
            || client.encrypt(&message).expect("encrypt"),
            |ciphertext| server.decrypt(black_box(&ciphertext)).expect("decrypt"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, codec, noise);
criterion_main!(benches);
