package registry

import "errors"

// Errors that callers tell apart with errors.Is.
var (
	// ErrInvalid marks a request that breaks the registry's rules; it changed
	// nothing.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound marks a service or instance that is not registered.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable marks a write the store could not make durable; it
	// changed nothing.
	ErrUnavailable = errors.New("store unavailable")
)
