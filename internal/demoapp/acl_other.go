//go:build !linux

package demoapp

import "errors"

func grantSearch(string, uint32) (bool, error) { return false, errors.ErrUnsupported }

func aclAllows(string, uint32) bool { return false }
