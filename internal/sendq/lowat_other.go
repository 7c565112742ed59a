//go:build !linux

package sendq

// setNotSentLowat does nothing where TCP_NOTSENT_LOWAT is not Linux's: the queue still bounds
// what waits in user space.
func setNotSentLowat(uintptr, int) error { return nil }
