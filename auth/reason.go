package auth

// Reason is why a token was refused: a small number, so that counting refusals by reason is an
// array index.
type Reason uint8

// Refusal reasons (the "reason" label of wsgate_auth_refused_total).
const (
	ReasonMissing     Reason = iota // no token in the request
	ReasonMalformed                 // not a JWT (segments, base64, JSON), or too long
	ReasonSignature                 // the signature does not verify
	ReasonAlgorithm                 // "alg" is not one this gateway's keys accept ("none" included)
	ReasonExpired                   // "exp" has passed
	ReasonNotYetValid               // "nbf" (or "iat") is in the future
	ReasonAudience                  // "aud" is not -jwt-audience
	ReasonIssuer                    // "iss" is not -jwt-issuer
	ReasonClaims                    // "sub" missing or invalid, or an invalid "channels"/"publish" pattern
	NumReasons
)

var reasonNames = [NumReasons]string{"missing", "malformed", "signature", "algorithm", "expired",
	"not_yet_valid", "audience", "issuer", "claims"}

// String is the reason's metric label.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Error is a refused token: the reason and a short message for the client. It never contains
// the token.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }
