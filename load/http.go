package load

import (
	"fmt"
	"strconv"
)

// StatusError is the error of an HTTP operation whose response status is
// 400 or more.
// Its code is "http_<status>".
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string     { return fmt.Sprintf("http status %d", e.Status) }
func (e *StatusError) ErrorCode() string { return "http_" + strconv.Itoa(e.Status) }
