package telegram

import (
	"net/http"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// Defaults of Config: Telegram's own limits for bots ("about one message
// per second" to one chat, "about 30 messages per second" in all).
const (
	DefaultBaseURL    = "https://api.telegram.org"
	DefaultChatRate   = 1.0
	DefaultGlobalRate = 30.0
	DefaultTimeout    = 10 * time.Second
)

// Config is the Telegram channel's configuration, read from the
// environment by LoadConfig (the variable of each field is named beside
// it).
type Config struct {
	// TokenFile holds the bot token, "123456:ABC-...", on its first line
	// (NOTIFIER_TELEGRAM_TOKEN_FILE). Unset, the Telegram channel is off.
	TokenFile string
	// BaseURL is the Bot API's address (NOTIFIER_TELEGRAM_API_URL,
	// https://api.telegram.org); http only to a loopback address, as the
	// token travels in the path.
	BaseURL string
	// ChatRate is the most messages per second sent to one chat
	// (NOTIFIER_TELEGRAM_CHAT_RATE, 1).
	ChatRate float64
	// GlobalRate is the most messages per second sent in all
	// (NOTIFIER_TELEGRAM_RATE, 30).
	GlobalRate float64
	// Timeout bounds one sendMessage call (NOTIFIER_TELEGRAM_TIMEOUT, 10s);
	// waiting for the rate limits is bounded by Send's context only.
	Timeout time.Duration
	// HTTP is the client to use (its redirect policy is replaced: a
	// redirect would carry the token elsewhere). Nil: a new one. Not read
	// from the environment.
	HTTP *http.Client
}

// LoadConfig reads the NOTIFIER_TELEGRAM_* variables. It records a
// malformed value in env (env.Err reports it); whether the channel is on is
// Config.TokenFile != "", and New checks the rest.
func LoadConfig(env *envconfig.Loader) Config {
	return Config{
		TokenFile:  env.String("NOTIFIER_TELEGRAM_TOKEN_FILE", ""),
		BaseURL:    env.String("NOTIFIER_TELEGRAM_API_URL", DefaultBaseURL),
		ChatRate:   env.Float("NOTIFIER_TELEGRAM_CHAT_RATE", DefaultChatRate),
		GlobalRate: env.Float("NOTIFIER_TELEGRAM_RATE", DefaultGlobalRate),
		Timeout:    env.Duration("NOTIFIER_TELEGRAM_TIMEOUT", DefaultTimeout),
	}
}
