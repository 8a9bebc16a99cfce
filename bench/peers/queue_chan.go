// queue_chan: the Go peer of queue_1p1c / queue_2p2c (BENCHMARKS.md): a
// buffered channel of capacity 1024 between P producer and C consumer
// goroutines, GOMAXPROCS left at its default. Same shape as
// bench/queue_bench.h. Usage: queue_chan PRODUCERS CONSUMERS [N]
// Prints `queue_<P>p<C>c: <items/s> items/s`.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func arg(i int, def int64) int64 {
	if len(os.Args) > i {
		v, err := strconv.ParseInt(os.Args[i], 10, 64)
		if err == nil {
			return v
		}
	}
	return def
}

func main() {
	producers := arg(1, 1)
	consumers := arg(2, 1)
	n := arg(3, 10000000)
	ch := make(chan uintptr, 1024)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var checksum uint64
	start := make(chan struct{})
	for p := int64(0); p < producers; p++ {
		wg.Add(1)
		go func(id int64) {
			defer wg.Done()
			<-start
			for i := id; i < n; i += producers {
				ch <- uintptr(i + 1)
			}
		}(p)
	}
	for c := int64(0); c < consumers; c++ {
		count := n / consumers
		if c < n%consumers {
			count++
		}
		wg.Add(1)
		go func(count int64) {
			defer wg.Done()
			<-start
			var sum uint64
			for i := int64(0); i < count; i++ {
				sum += uint64(<-ch)
			}
			mu.Lock()
			checksum += sum
			mu.Unlock()
		}(count)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	secs := time.Since(t0).Seconds()
	un := uint64(n)
	if checksum != un*(un+1)/2 {
		fmt.Fprintln(os.Stderr, "queue_chan: checksum mismatch")
		os.Exit(1)
	}
	fmt.Printf("queue_%dp%dc: %.0f items/s\n", producers, consumers, float64(n)/secs)
}
