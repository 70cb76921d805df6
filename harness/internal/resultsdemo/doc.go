// Package resultsdemo holds a test package that fails on purpose, built
// only with the build tag resultsdemo: a case whose history loses an
// acknowledged insert, judged by the checkers. The package's own test
// (built without that tag) runs it through the Makefile's make test
// machinery and checks that the results name the failing case, its rerun
// command and its artifact folder.
package resultsdemo
