// coro_spawn_join: the Go peer of bench/coro_spawn_join.c: start N no-op
// goroutines on one P (GOMAXPROCS=1, like one event loop), in batches of 50,
// and wait for each batch with a sync.WaitGroup.
// Usage: coro_spawn_join [N goroutines, default 1,000,000]
// Prints `coro_spawn_join: <ns> ns/task`.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func main() {
	n := int64(1000000)
	if len(os.Args) > 1 {
		if v, err := strconv.ParseInt(os.Args[1], 10, 64); err == nil {
			n = v
		}
	}
	runtime.GOMAXPROCS(1)
	const batch = 50
	var ran int64
	t0 := time.Now()
	for done := int64(0); done < n; done += batch {
		k := n - done
		if k > batch {
			k = batch
		}
		var wg sync.WaitGroup
		wg.Add(int(k))
		for i := int64(0); i < k; i++ {
			go func() {
				ran++ // one P: goroutines never run in parallel
				wg.Done()
			}()
		}
		wg.Wait()
	}
	ns := time.Since(t0).Nanoseconds()
	if ran != n {
		fmt.Fprintf(os.Stderr, "coro_spawn_join: checksum: %d ran, wanted %d\n", ran, n)
		os.Exit(1)
	}
	fmt.Printf("coro_spawn_join: %.1f ns/task\n", float64(ns)/float64(n))
}
