//! The smoke run: a broker, one batch per codec produced with kafka-wire and
//! fetched back, every field compared.

use std::time::Instant;

use bytes::Bytes;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::records::{BatchBuilder, BatchReader, Compression, Header, ProducerState};

use crate::wire_ops;

/// One codec's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodecResult {
    /// Codec name.
    pub codec: &'static str,
    /// Records produced.
    pub produced: usize,
    /// Records fetched back and matching.
    pub verified: usize,
    /// Base offset the broker assigned.
    pub base_offset: i64,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeReport {
    /// Broker address used.
    pub bootstrap: String,
    /// Topic written.
    pub topic: String,
    /// Per codec.
    pub codecs: Vec<CodecResult>,
    /// Wall time.
    pub elapsed_ms: u128,
}

/// The records of the smoke batch for `codec`: key `i`, value `codec-i`, and two
/// headers with the same key, one of them null.
pub fn smoke_records(codec: Compression, count: usize) -> Vec<(Bytes, Bytes, Vec<Header>)> {
    (0..count)
        .map(|i| {
            let headers = vec![
                Header::new("h", format!("{i}")),
                Header {
                    key: Bytes::from_static(b"h"),
                    value: None,
                },
            ];
            (
                Bytes::from(i.to_string()),
                Bytes::from(format!("{codec}-{i}")),
                headers,
            )
        })
        .collect()
}

/// Produces and fetches one batch per codec on `bootstrap`.
pub async fn run(
    bootstrap: &str,
    records_per_codec: usize,
) -> Result<SmokeReport, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let connection = connect(bootstrap, None, ConnectionConfig::default()).await?;
    let topic = format!(
        "smoke-{}-{}",
        std::process::id(),
        started.elapsed().as_nanos()
    );
    wire_ops::create_topic(&connection, &topic, 1).await?;
    let connection = wire_ops::leader_connection(&connection, &topic, 0).await?;
    let mut codecs = Vec::new();
    for codec in Compression::ALL {
        let expected = smoke_records(codec, records_per_codec);
        let mut builder = BatchBuilder::new(codec);
        for (key, value, headers) in &expected {
            builder.append(1_700_000_000_000, Some(key), Some(value), headers);
        }
        let base_offset = wire_ops::produce(
            &connection,
            &topic,
            0,
            builder.build(ProducerState::NONE)?,
            -1,
            None,
        )
        .await?
        .ok_or("acks=all produce returned no offset")?;
        let fetched = wire_ops::fetch(&connection, &topic, 0, base_offset, false).await?;
        let batch = BatchReader::new(fetched.records)
            .next()
            .ok_or("fetch returned no batch")??;
        let mut verified = 0;
        for (index, (record, (key, value, headers))) in
            batch.records.iter().zip(&expected).enumerate()
        {
            let ok = record.offset == base_offset + index as i64
                && record.key.as_ref() == Some(key)
                && record.value.as_ref() == Some(value)
                && &record.headers == headers;
            if !ok {
                return Err(format!("{codec}: record {index} differs: {record:?}").into());
            }
            verified += 1;
        }
        if verified != expected.len() {
            return Err(
                format!("{codec}: fetched {verified} of {} records", expected.len()).into(),
            );
        }
        codecs.push(CodecResult {
            codec: codec.name(),
            produced: expected.len(),
            verified,
            base_offset,
        });
    }
    Ok(SmokeReport {
        bootstrap: bootstrap.to_owned(),
        topic,
        codecs,
        elapsed_ms: started.elapsed().as_millis(),
    })
}
