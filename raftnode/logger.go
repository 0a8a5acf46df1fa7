package raftnode

import (
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to raft's Logger interface. Raft's chatty info
// lines go to debug, except elections, which operators want to see.
type raftLogger struct{ lg *slog.Logger }

func (l raftLogger) Debug(v ...interface{})                 { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...interface{}) { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Error(v ...interface{})                 { l.lg.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...interface{}) { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...interface{})                  { l.lg.Info(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...interface{})  { l.lg.Info(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...interface{})               { l.lg.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...interface{}) {
	l.lg.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Fatal(v ...interface{}) { l.lg.Error(fmt.Sprint(v...)); os.Exit(1) }
func (l raftLogger) Fatalf(format string, v ...interface{}) {
	l.lg.Error(fmt.Sprintf(format, v...))
	os.Exit(1)
}
func (l raftLogger) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...interface{}) {
	panic(fmt.Sprintf(format, v...))
}
