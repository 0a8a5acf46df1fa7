package testcluster_test

import (
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestBuildTagsAndEnv: a member built with a build tag runs that build,
// with the environment the test gave it (here a deliberate bug of
// internal/failpoint, which the server announces).
func TestBuildTagsAndEnv(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{
		BuildTags: []string{"cairn_failpoints"},
		Env:       []string{"CAIRN_FAILPOINTS=dropWatchEvent"},
	})
	if tagged, plain := m.Logs(), testcluster.Binary(t); !strings.Contains(tagged, "failpoint switched on") || strings.Contains(tagged, plain+" ") {
		t.Fatalf("the member did not run the tagged build with its environment; its output:\n%s", tagged)
	}
}
