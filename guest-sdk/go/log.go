package sluice

import (
	"fmt"

	wlog "sluice.dev/guest/internal/wit/imports/sluice_handler_log"
)

// Logger writes records into the host log, which tags them with the
// function and the id of the event being handled. Use [Log].
type Logger struct{}

// Log is the host log: sluice.Log.Info("..."), sluice.Log.Warnf(...).
var Log Logger

func (Logger) write(level wlog.Level, msg string) { wlog.Log(level, msg) }

// Trace logs msg at trace level.
func (l Logger) Trace(msg string) { l.write(wlog.Level_Trace, msg) }

// Debug logs msg at debug level.
func (l Logger) Debug(msg string) { l.write(wlog.Level_Debug, msg) }

// Info logs msg at info level.
func (l Logger) Info(msg string) { l.write(wlog.Level_Info, msg) }

// Warn logs msg at warn level.
func (l Logger) Warn(msg string) { l.write(wlog.Level_Warn, msg) }

// Error logs msg at error level.
func (l Logger) Error(msg string) { l.write(wlog.Level_Error, msg) }

// Tracef logs at trace level, formatted like fmt.Sprintf.
func (l Logger) Tracef(format string, a ...any) { l.Trace(fmt.Sprintf(format, a...)) }

// Debugf logs at debug level, formatted like fmt.Sprintf.
func (l Logger) Debugf(format string, a ...any) { l.Debug(fmt.Sprintf(format, a...)) }

// Infof logs at info level, formatted like fmt.Sprintf.
func (l Logger) Infof(format string, a ...any) { l.Info(fmt.Sprintf(format, a...)) }

// Warnf logs at warn level, formatted like fmt.Sprintf.
func (l Logger) Warnf(format string, a ...any) { l.Warn(fmt.Sprintf(format, a...)) }

// Errorf logs at error level, formatted like fmt.Sprintf.
func (l Logger) Errorf(format string, a ...any) { l.Error(fmt.Sprintf(format, a...)) }
