//go:build unix

package compose

import "syscall"

// mixNice is the niceness a one-run mix after the call (audio only) runs at: below the live
// calls, above idle.
const mixNice = 10

// LiveNice is the niceness for segments mixed while the call goes on: the lowest, so that the
// mix takes only CPU the calls leave idle, falling behind (and catching up) rather than slowing
// them.
const LiveNice = 19

// lowerPriority renices a started process; failing to is harmless, so the error is dropped.
func lowerPriority(pid, nice int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice) }

// raisePriority sets a niced process back to niceness 0, which needs CAP_SYS_NICE (root, or a
// service granted it): without, it fails and the caller redoes the work instead.
func raisePriority(pid int) error { return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 0) }
