// Package bytesize prints sizes for people, in binary units (KiB, MiB,
// GiB) with one decimal, as progress lines and error messages show them.
package bytesize

import "fmt"

// Format gives n bytes as "1.5 GiB", "3.0 MiB" or "12.0 KiB".
func Format(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}
