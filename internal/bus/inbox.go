package bus

import "strings"

// inboxPrefix returns the inbox prefix to use: InboxPrefix, else "_INBOX.<User>"
// when the user name is a subject token, else "" (nats.go's "_INBOX").
func (o Options) inboxPrefix() string {
	if o.InboxPrefix != "" {
		return o.InboxPrefix
	}
	if o.User == "" || o.CredsFile != "" || o.NKeySeedFile != "" || o.Token != "" ||
		strings.ContainsAny(o.User, ".*> \t\r\n") {
		return ""
	}
	return "_INBOX." + o.User
}
