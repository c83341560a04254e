package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strings"
)

// NewToken returns a random token for Options.Token.
func NewToken() string { return rand.Text() }

// IsLoopback reports whether a listen address (host:port) binds only this
// machine's loopback interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cookieName is the cookie that carries the token. Cookies are shared by every
// port of a host: the name carries the port, so that two web views on one
// machine keep their own.
func cookieName(r *http.Request) string {
	_, port, _ := net.SplitHostPort(r.Host)
	return "orca-ui-" + port
}

// authenticate lets through the requests that carry the token: as ?token= on
// the page's address (answered with a cookie and a redirect that drops it from
// the address bar), as the cookie, or as a bearer token. A POST must also be
// JSON and, when the browser names its origin, come from the page itself.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		if q := r.URL.Query().Get("token"); q != "" && r.Method == http.MethodGet {
			if !s.validToken(q) {
				http.Error(w, "wrong token: open the address that `orca ui` or `orca run` printed at its start", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{
				Name: cookieName(r), Value: q, Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			})
			u := *r.URL
			query := u.Query()
			query.Del("token")
			u.RawQuery = query.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		token := ""
		if c, err := r.Cookie(cookieName(r)); err == nil {
			token = c.Value
		} else if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = h
		}
		if !s.validToken(token) {
			http.Error(w, "this page needs its token: open the address that `orca ui` or `orca run` printed at its start", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				http.Error(w, "send JSON", http.StatusUnsupportedMediaType)
				return
			}
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) validToken(t string) bool {
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(s.o.Token)) == 1
}
