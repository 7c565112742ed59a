//go:build unix

package compose

import "syscall"

// mixNice is the niceness a mix after the call runs at: below the live calls, above idle.
const mixNice = 10

// LiveNice is the niceness for segments mixed while the call goes on: the lowest, so that the
// mix takes only CPU the calls leave idle, falling behind (and catching up) rather than slowing
// them.
const LiveNice = 19

// lowerPriority renices a started process; failing to is harmless, so the error is dropped.
func lowerPriority(pid, nice int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice) }
