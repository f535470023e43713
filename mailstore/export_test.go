package mailstore

import "sealmail/internal/faultpoint"

// A child process of the crash tests kills itself at a fault point
// (internal/faultpoint).
func init() {
	if f := faultpoint.FromEnv(); f != nil {
		fault = f
	}
}
