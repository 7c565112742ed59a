//go:build !unix

package compose

const mixNice = 10

// LiveNice is the niceness for segments mixed while the call goes on (unused here).
const LiveNice = 19

// lowerPriority is a no-op where there is no setpriority.
func lowerPriority(int, int) {}

// raisePriority has nothing to undo where nothing was lowered.
func raisePriority(int) error { return nil }
