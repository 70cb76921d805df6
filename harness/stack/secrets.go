package stack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Lengths of the run's secrets. MinIO wants an access key of at least 3
// characters and a secret key of at least 8 (and at most 20 and 40 for
// older releases); both are hex, so they need no escaping anywhere.
const (
	accessKeyBytes    = 8  // 16 hex characters
	secretKeyBytes    = 16 // 32 hex characters
	controlTokenBytes = 32 // 64 hex characters
)

// secrets are the credentials of one stack, drawn from crypto/rand when it
// starts: nothing outside the run knows them, and two runs sharing a Docker
// engine never share them.
type secrets struct {
	// accessKey and secretKey are MinIO's root credentials; s3faultd signs
	// its own requests with them, the service and the direct client use them.
	accessKey, secretKey string
	// s3faultToken is the bearer token of the S3 fault layer's control API.
	s3faultToken string
}

// newSecrets draws a fresh set of secrets.
func newSecrets() (secrets, error) {
	var s secrets
	for _, f := range []struct {
		dst *string
		n   int
	}{{&s.accessKey, accessKeyBytes}, {&s.secretKey, secretKeyBytes}, {&s.s3faultToken, controlTokenBytes}} {
		b := make([]byte, f.n)
		if _, err := rand.Read(b); err != nil {
			return secrets{}, fmt.Errorf("stack: random credentials: %w", err)
		}
		*f.dst = hex.EncodeToString(b)
	}
	return s, nil
}

// S3Credentials returns MinIO's root access key and secret key for this
// stack. They are random per stack; the service, the S3 fault layer and Stack.S3
// already use them, so a test needs them only for a client of its own.
func (s *Stack) S3Credentials() (accessKey, secretKey string) {
	return s.secrets.accessKey, s.secrets.secretKey
}
