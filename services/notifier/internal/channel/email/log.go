package email

import (
	"context"
	"fmt"
	"log/slog"

	maillog "github.com/wneessen/go-mail/log"
)

// conversationLog hands go-mail's SMTP conversation to slog at Debug
// level, one record per command or reply. go-mail replaces the AUTH
// exchange by "<SMTP auth data redacted>" unless told otherwise (it is
// not: WithLogAuthData is never set).
type conversationLog struct{ l *slog.Logger }

var _ maillog.Logger = conversationLog{}

func (c conversationLog) log(level slog.Level, m maillog.Log) {
	dir := "server"
	if m.Direction == maillog.DirClientToServer {
		dir = "client"
	}
	c.l.Log(context.Background(), level, "smtp", "from", dir, "line", fmt.Sprintf(m.Format, m.Messages...))
}

func (c conversationLog) Debugf(m maillog.Log) { c.log(slog.LevelDebug, m) }
func (c conversationLog) Infof(m maillog.Log)  { c.log(slog.LevelInfo, m) }
func (c conversationLog) Warnf(m maillog.Log)  { c.log(slog.LevelWarn, m) }
func (c conversationLog) Errorf(m maillog.Log) { c.log(slog.LevelError, m) }
