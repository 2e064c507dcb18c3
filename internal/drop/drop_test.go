package drop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vipd/vipd/pkg/vrrp"
)

func TestFromCodec(t *testing.T) {
	tests := []struct {
		err  error
		want Reason
	}{
		{nil, None},
		{fmt.Errorf("%w: 5 bytes", vrrp.ErrTruncated), Truncated},
		{vrrp.ErrTrailing, Oversized},
		{vrrp.ErrVersion, Version},
		{vrrp.ErrType, Type},
		{vrrp.ErrChecksum, Checksum},
		{vrrp.ErrInterval, Interval},
		{vrrp.ErrFamily, Family},
		{fmt.Errorf("%w: ext_type 2", vrrp.ErrAuthMalformed), AuthMalformed},
		{errors.New("something else"), Malformed},
	}
	for _, tt := range tests {
		if got := FromCodec(tt.err); got != tt.want {
			t.Errorf("FromCodec(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	for r := None; r < Count; r++ {
		if r.String() == "" || r.String() == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
		if got, want := r.Auth(), strings.HasPrefix(r.String(), "auth_") && r != Auth && r != AuthType; got != want {
			t.Errorf("%v.Auth() = %v, want %v", r, got, want)
		}
	}
}
