// 200 goroutines, each locked to an OS thread of its own: the Go runtime must create
// them, and under a small pids budget it cannot.
package main

import (
	"runtime"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			time.Sleep(5 * time.Second)
			wg.Done()
		}()
	}
	wg.Wait()
}
