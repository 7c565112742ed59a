//go:build !linux

package sendq

import "syscall"

// setNotSentLowat does nothing where TCP_NOTSENT_LOWAT is not Linux's: the queue still bounds
// what waits in user space.
func setNotSentLowat(uintptr, int) error { return nil }

// socketProgress is not known outside Linux: the queue then bounds only what waits in it.
func socketProgress(syscall.RawConn) progressReader { return nil }
