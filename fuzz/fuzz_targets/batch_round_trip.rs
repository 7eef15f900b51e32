//! decode(encode(records)) == records for structured inputs.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use kafka_wire::records::{BatchBuilder, BatchReader, Compression, Header, ProducerState};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    codec: u8,
    base_offset: u32,
    producer_id: i64,
    base_sequence: i32,
    records: Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(Vec<u8>, Option<Vec<u8>>)>)>,
}

fuzz_target!(|input: Input| {
    if input.records.is_empty() {
        return;
    }
    let codec = Compression::ALL[usize::from(input.codec) % Compression::ALL.len()];
    let mut builder = BatchBuilder::new(codec).base_offset(i64::from(input.base_offset));
    let records: Vec<_> = input
        .records
        .iter()
        .map(|(ts, key, value, headers)| {
            let headers: Vec<Header> = headers
                .iter()
                .map(|(k, v)| Header { key: Bytes::from(k.clone()), value: v.clone().map(Bytes::from) })
                .collect();
            (*ts, key.clone(), value.clone(), headers)
        })
        .collect();
    for (ts, key, value, headers) in &records {
        builder.append(*ts, key.as_deref(), value.as_deref(), headers);
    }
    let producer = ProducerState { producer_id: input.producer_id, producer_epoch: 0, base_sequence: input.base_sequence };
    let encoded = builder.build(producer).expect("encoding cannot fail");
    let batch = BatchReader::new(encoded).next().expect("one batch").expect("decodes");
    assert_eq!(batch.records.len(), records.len());
    for (index, (decoded, (ts, key, value, headers))) in batch.records.iter().zip(&records).enumerate() {
        assert_eq!(decoded.offset, i64::from(input.base_offset) + index as i64);
        assert_eq!(decoded.timestamp, *ts);
        assert_eq!(decoded.key.as_deref(), key.as_deref());
        assert_eq!(decoded.value.as_deref(), value.as_deref());
        assert_eq!(&decoded.headers, headers);
    }
});
