// Package e2e holds end-to-end tests: whole sealmail instances talking over loopback.
package e2e
