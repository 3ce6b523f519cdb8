package email

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// TLSPolicy says how the connection to the SMTP server is encrypted.
type TLSPolicy string

// The TLS policies. STARTTLS is the default and the only one fit for a
// server across a network: the others exist for a sink on this machine.
const (
	// TLSStartTLS requires STARTTLS: a server that does not offer it, or
	// whose certificate does not verify, gets nothing (not even the
	// password).
	TLSStartTLS TLSPolicy = "starttls"
	// TLSOpportunistic uses STARTTLS when the server offers it and goes on
	// in the clear when it does not.
	TLSOpportunistic TLSPolicy = "opportunistic"
	// TLSNone never encrypts.
	TLSNone TLSPolicy = "none"
)

// Defaults of Config.
const (
	DefaultPort    = 587
	DefaultTimeout = 30 * time.Second
)

// Config is the email channel's configuration, read from the environment
// by LoadConfig (the variable of each field is named beside it).
type Config struct {
	// Host is the SMTP server (NOTIFIER_SMTP_HOST). Unset, the email
	// channel is off.
	Host string
	// Port is the server's submission port (NOTIFIER_SMTP_PORT, 587).
	Port int
	// Username is the AUTH user (NOTIFIER_SMTP_USERNAME); empty sends
	// without AUTH.
	Username string
	// PasswordFile holds the AUTH password (NOTIFIER_SMTP_PASSWORD_FILE),
	// one line; required with Username. Like every secret file it must not
	// be readable by other users (secretfile.CheckMode).
	PasswordFile string
	// From is the sender, an address with an optional display name
	// (NOTIFIER_SMTP_FROM: "slotwatch <alerts@example.org>"). Its domain
	// is also the right-hand side of every Message-ID.
	From string
	// TLS is the TLS policy (NOTIFIER_SMTP_TLS: starttls, the default;
	// opportunistic or none only for a sink on this machine).
	TLS TLSPolicy
	// CAFile holds the PEM certificates that the server's certificate must
	// chain to (NOTIFIER_SMTP_CA_FILE); empty uses the system's roots.
	CAFile string
	// Timeout bounds one delivery: connect, TLS, AUTH and the message
	// (NOTIFIER_SMTP_TIMEOUT, 30s).
	Timeout time.Duration
	// Logger, when it has Debug enabled, receives the SMTP conversation
	// (commands and replies; AUTH data redacted, message data not logged).
	// Not read from the environment.
	Logger *slog.Logger
}

// LoadConfig reads the NOTIFIER_SMTP_* variables. It records a malformed
// value in env (env.Err reports it); whether the channel is on is
// Config.Host != "", and New checks what goes together.
func LoadConfig(env *envconfig.Loader) Config {
	c := Config{
		Host:         env.String("NOTIFIER_SMTP_HOST", ""),
		Port:         env.Int("NOTIFIER_SMTP_PORT", DefaultPort, 1),
		Username:     env.String("NOTIFIER_SMTP_USERNAME", ""),
		PasswordFile: env.String("NOTIFIER_SMTP_PASSWORD_FILE", ""),
		From:         env.String("NOTIFIER_SMTP_FROM", ""),
		TLS:          TLSPolicy(env.String("NOTIFIER_SMTP_TLS", string(TLSStartTLS))),
		CAFile:       env.String("NOTIFIER_SMTP_CA_FILE", ""),
		Timeout:      env.Duration("NOTIFIER_SMTP_TIMEOUT", DefaultTimeout),
	}
	return c
}

func (p TLSPolicy) check() error {
	switch p {
	case TLSStartTLS, TLSOpportunistic, TLSNone:
		return nil
	}
	return fmt.Errorf("NOTIFIER_SMTP_TLS=%q: want starttls, opportunistic (local sinks only) or none (local sinks only)", string(p))
}
