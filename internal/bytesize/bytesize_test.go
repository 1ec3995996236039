package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB", 3145733: "3.0 MiB", 3 << 29: "1.5 GiB",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
