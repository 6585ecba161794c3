package store

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned when the named provider, model or key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write clashes with existing data: a
// duplicate name, or deleting a provider that models still reference. The
// returned error wraps ErrConflict and its message is safe to show admins.
var ErrConflict = errors.New("conflict")

// ValidationError reports an invalid input field. Message is safe to show.
type ValidationError struct {
	// Field is the JSON name of the offending field, e.g. "base_url" or
	// "deployments[0].provider".
	Field string
	// Message says what is wrong.
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}
