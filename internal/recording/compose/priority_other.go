//go:build !unix

package compose

// lowerPriority is a no-op where there is no setpriority.
func lowerPriority(int) {}
