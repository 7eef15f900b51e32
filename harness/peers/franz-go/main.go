// franz-bench: franz-go as a peer of `harness bench --peers`. Produces or
// consumes the harness's workload and prints one JSON line; the harness
// measures this process's CPU and peak RSS itself (wait4).
//
//	franz-bench -mode produce -bootstrap B -topic T -count N -size S -batch BYTES
//	franz-bench -mode consume -bootstrap B -topic T -count N
//
// Record i of the produce workload has key "i" and value "msg-i" padded with
// '.' to the size, as `harness produce` writes it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type report struct {
	Client        string  `json:"client"`
	Records       int     `json:"records"`
	Failed        int     `json:"failed"`
	ElapsedMs     float64 `json:"elapsed_ms"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MbPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
}

func main() {
	mode := flag.String("mode", "produce", "produce or consume")
	bootstrap := flag.String("bootstrap", "", "bootstrap servers")
	topic := flag.String("topic", "", "topic")
	count := flag.Int("count", 1_000_000, "records")
	size := flag.Int("size", 100, "value size in bytes (produce)")
	batch := flag.Int("batch", 1_000_000, "batch size in bytes (produce)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" {
		fail("-bootstrap and -topic are required")
	}
	seeds := strings.Split(*bootstrap, ",")
	var out report
	switch *mode {
	case "produce":
		out = produce(seeds, *topic, *count, *size, *batch)
	case "consume":
		out = consume(seeds, *topic, *count)
	default:
		fail("-mode produce|consume, got " + *mode)
	}
	out.Client = "franz-go v1.22.3"
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

func produce(seeds []string, topic string, count, size, batch int) report {
	// Idempotent with acks=all are franz-go's defaults; linger as the others.
	client, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(batch)),
		kgo.MaxBufferedRecords(1_000_000),
	)
	if err != nil {
		fail(err.Error())
	}
	defer client.Close()
	latencies := make([]time.Duration, 0, count)
	var mu sync.Mutex
	failed := 0
	ctx := context.Background()
	started := time.Now()
	for i := 0; i < count; i++ {
		value := []byte("msg-" + strconv.Itoa(i))
		if len(value) < size {
			value = append(value, []byte(strings.Repeat(".", size-len(value)))...)
		}
		sent := time.Now()
		client.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value}, func(_ *kgo.Record, err error) {
			mu.Lock()
			latencies = append(latencies, time.Since(sent))
			if err != nil {
				failed++
			}
			mu.Unlock()
		})
	}
	if err := client.Flush(ctx); err != nil {
		fail(err.Error())
	}
	elapsed := time.Since(started)
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pick := func(p float64) float64 {
		index := int(float64(len(latencies)) * p)
		if index >= len(latencies) {
			index = len(latencies) - 1
		}
		return float64(latencies[index].Microseconds()) / 1000
	}
	seconds := elapsed.Seconds()
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "%d records failed\n", failed)
	}
	return report{
		Records:       count - failed,
		Failed:        failed,
		ElapsedMs:     seconds * 1000,
		RecordsPerSec: float64(count-failed) / seconds,
		MbPerSec:      float64((count-failed)*size) / seconds / 1e6,
		P50Ms:         pick(0.5),
		P99Ms:         pick(0.99),
	}
}

func consume(seeds []string, topic string, count int) report {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		fail(err.Error())
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	started := time.Now()
	consumed, bytes := 0, 0
	var last time.Time
	for consumed < count {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			fail(fmt.Sprintf("consumed %d of %d within 120 s", consumed, count))
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("%s[%d]: %v", t, p, err))
		})
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			bytes += len(r.Value)
		})
		last = time.Now()
	}
	seconds := last.Sub(started).Seconds()
	return report{
		Records:       consumed,
		ElapsedMs:     seconds * 1000,
		RecordsPerSec: float64(consumed) / seconds,
		MbPerSec:      float64(bytes) / seconds / 1e6,
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}
