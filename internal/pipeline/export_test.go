package pipeline

// BeginSQL exposes beginSQL to the external tests.
var BeginSQL = beginSQL
