//go:build unix

package compose

import "syscall"

// mixNice is the niceness ffmpeg runs at: below the live calls, above idle.
const mixNice = 10

// lowerPriority renices a started process; failing to is harmless, so the error is dropped.
func lowerPriority(pid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, mixNice) }
