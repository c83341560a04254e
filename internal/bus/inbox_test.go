package bus

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInboxPrefixIsTheUsersOwn(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{User: "orca-actions", Password: "x"}, "_INBOX.orca-actions"},
		{Options{User: "orca-actions", InboxPrefix: "_INBOX.custom"}, "_INBOX.custom"},
		{Options{InboxPrefix: "_INBOX.custom"}, "_INBOX.custom"},
		{Options{User: "a.b*"}, ""},
		{Options{User: "orca-actions", CredsFile: "x.creds"}, ""},
	} {
		assert.Equal(t, tc.want, tc.o.inboxPrefix(), "%+v", tc.o)
	}
}
