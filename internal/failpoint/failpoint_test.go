package failpoint

import "testing"

func TestOffWithoutEnvironment(t *testing.T) {
	if Enabled(SkipReadIndex) {
		t.Fatal("SkipReadIndex is on without CAIRN_FAILPOINTS")
	}
}
