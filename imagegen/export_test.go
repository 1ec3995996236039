package imagegen

// DescribeContent exposes the summary line's wording to the tests.
var DescribeContent = describeContent
