package server

import (
	"bufio"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// memoryFraction of the machine (or cgroup) is the runtime's soft limit by default: the rest
// is for the kernel's socket buffers, ffmpeg during COMPOSED recordings, and headroom before
// the OOM killer.
const memoryFraction = 0.8

// SetMemoryLimit sets the Go runtime's soft memory limit: GOMEMLIMIT if the operator set it
// (the runtime has read it already), else PARLEY_MEMORY_LIMIT, else memoryFraction of the
// cgroup's memory.max or of the machine's RAM. Near the limit the collector works harder
// instead of the heap growing into an OOM kill. It returns the limit in bytes (0: none found).
// Called once by main: the limit is the process's, not one Server's.
func SetMemoryLimit(mib int, log *slog.Logger) int64 {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return debug.SetMemoryLimit(-1)
	}
	var limit int64
	source := "PARLEY_MEMORY_LIMIT"
	if mib > 0 {
		limit = int64(mib) << 20
	} else if total, from := machineMemory(); total > 0 {
		limit, source = int64(float64(total)*memoryFraction), from
	}
	if limit <= 0 {
		return 0
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "bytes", limit, "from", source)
	return limit
}

// machineMemory is the cgroup v2 memory.max when one is set, else MemTotal.
func machineMemory() (int64, string) {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n, "80% of the cgroup's memory.max"
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb << 10, "80% of MemTotal"
		}
	}
	return 0, ""
}

// joinRefusal is the fraction of the memory limit past which new joins are refused: with the
// live heap that close to it the collector runs almost without pause, and each participant more
// brings the OOM kill closer for everyone already in a call, who keep their calls.
const joinRefusal = 0.9

// memoryGuard refuses new joins near the runtime's memory limit (signaling.Config.Admit).
type memoryGuard struct {
	limit func() int64  // the runtime's soft limit; math.MaxInt64 when there is none
	live  func() uint64 // the heap still in use after the last collection
}

func newMemoryGuard() memoryGuard {
	return memoryGuard{limit: func() int64 { return debug.SetMemoryLimit(-1) }, live: liveHeap}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// admit says why a join must wait, or nil.
func (g memoryGuard) admit() error {
	limit := g.limit()
	if limit <= 0 || limit == math.MaxInt64 {
		return nil
	}
	if live := g.live(); float64(live) >= joinRefusal*float64(limit) {
		return fmt.Errorf("the server is near its memory limit (%d of %d MiB in use); try again later", live>>20, limit>>20)
	}
	return nil
}
