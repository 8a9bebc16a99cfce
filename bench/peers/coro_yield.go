// coro_yield: the Go peer of bench/coro_yield.c: two goroutines on one P
// (GOMAXPROCS=1, like one event loop) take turns with runtime.Gosched.
// Usage: coro_yield [N yields in all, default 20,000,000]
// Prints `coro_yield: <ns> ns/yield`.
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
	n := int64(20000000)
	if len(os.Args) > 1 {
		if v, err := strconv.ParseInt(os.Args[1], 10, 64); err == nil {
			n = v
		}
	}
	runtime.GOMAXPROCS(1)
	var count int64
	var wg sync.WaitGroup
	player := func() {
		defer wg.Done()
		for count < n { // one P: no data race between the two
			count++
			runtime.Gosched()
		}
	}
	wg.Add(2)
	t0 := time.Now()
	go player()
	go player()
	wg.Wait()
	ns := time.Since(t0).Nanoseconds()
	if count < n || count > n+1 {
		fmt.Fprintf(os.Stderr, "coro_yield: checksum: %d yields, wanted %d\n", count, n)
		os.Exit(1)
	}
	fmt.Printf("coro_yield: %.2f ns/yield\n", float64(ns)/float64(count))
}
