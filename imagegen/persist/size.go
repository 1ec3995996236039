package persist

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nixlive/nixlive/internal/bytesize"
)

var sizeRE = regexp.MustCompile(`^([0-9]+)([KMGT]?)(I?B)?$`)

// ParseSize reads a size as "--size" takes it: bytes ("67108864"), or
// with a binary unit, K, M, G or T ("512M", "1G", "64MiB", "2g").
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || (m[2] == "" && m[3] == "IB") {
		return 0, fmt.Errorf("size %q: want bytes or a number with K, M, G or T (512M, 1G)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

// sizeString is n bytes for people: "67108864 bytes (64.0 MiB)".
func sizeString(n int64) string {
	return fmt.Sprintf("%d bytes (%s)", n, bytesize.Format(n))
}
